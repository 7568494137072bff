"""DMD2-style distribution matching distillation (Yin et al. 2024a, b).

Per generator update:
1. `fake_steps_per_gen` updates of the fake denoiser D_fake by denoising
   score matching on sg(G(z)), sigma uniform over the Karras grid's indices
   (DMD2's two time-scale rule, 5:1 by default);
2. the generator direction V = (D_real - D_fake)(x + sigma eps, sigma) /
   mean|x - D_real(x + sigma eps, sigma)|, sigma from the grid's 2%..98%
   indices (DMD Eq. 7-8; `losses.dmd_direction`), and the loss
   1/2 mean ||x - sg(x + V)||^2, optionally plus DMD's regression loss
   lambda_reg |G(z_reg) - y_reg|^2 on noise/teacher-ODE pairs (DMD Eq. 9,
   with L2 instead of LPIPS as DMD's own CIFAR ablation);
3. optionally DMD2's GAN term (`dmd_gan`: a classifier head on D_fake's
   middle hidden map, trained with D_fake on noised real against noised
   generated images; `dmd.gan_gen_weight`, `dmd.gan_disc_weight`).

The generator is `model.generator` (`dmd.generator='network'`), or, as in
DMD2, the teacher's own network evaluated at sigma_max on noise of the
data's shape, G(z) = D_theta(sigma_max z, sigma_max), with theta starting
as the teacher's weights (`dmd.generator='teacher'`: a one-step
denoising of pure noise, so it starts at the teacher's one-step guess).

D_real is the teacher (`context.Teacher`, the prerequisite `dmd.teacher`):
the exact mixture denoiser ('oracle'), or a trained `diffusion` network
('train' or a workdir), frozen and passed as a constant. D_fake starts as a
copy of a trained teacher (`dmd.fake_init='teacher'`, DMD's choice; a
teacher whose network differs from `model.denoiser` is an error) or from
random weights (`'scratch'`, logged; the oracle has no network to copy).
With `dmd.denoisers='kde'` both denoisers are the exact posterior means of
the empirical data and generated batches (`scores.kde_denoiser`); evaluated
at the clean x (`noised=False`) with one `fixed_sigma` and
`normalize=False` this is the Gaussian `nw` drifting field (Lai et al.
2026, arXiv 2603.07514: Tweedie's formula on the empirical batches;
`tests/losses_test.py`).

The step is plain module-level functions of a frozen `DMDSpec` built once
by `make`; nothing reads the config while tracing.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from jax import lax

from drift_jax import models
from drift_jax.config import config_lib
from drift_jax.data import datasets as data_lib
from drift_jax.methods import common
from drift_jax.methods import diffusion
from drift_jax.methods import dmd_gan
from drift_jax.methods.context import Prerequisite
from drift_jax.methods.context import RunContext
from drift_jax.methods.context import Teacher
from drift_jax.models import precision
from drift_jax.parallel import sharding as parallel
from drift_jax.theory import distributions
from drift_jax.theory import losses
from drift_jax.theory import noise as noise_lib
from drift_jax.theory import scores
from drift_jax.train import workdir as workdir_lib

NAME = 'dmd'
DENOISER_KINDS = ('network', 'kde')
ORACLE = 'oracle'  # dmd.teacher: the exact mixture denoiser
FAKE_INITS = ('teacher', 'scratch')
GENERATORS = ('network', 'teacher')  # dmd.generator
# `train.microbatches` splits the generated batch (and, with it, the fake
# denoiser's, the GAN head's real side and the regression batch).
MICROBATCHES = 'gen_batch_size'

CONFIG = {
    # teacher_share: the teacher's share of a study's compute budget (the
    # harness splits a budget by it and writes `teacher_steps`); a single
    # run's teacher length is `teacher_steps` alone. teacher_eval_samples:
    # how many samples the trained teacher's one evaluation draws (0: the
    # student's eval.num_samples); its multi-step sampler can cost as much
    # as a third of a short run, and only reports on the teacher.
    # teacher_batch_size: the teacher run's batch (0: train.batch_size).
    # gan_gen_weight, gan_disc_weight: DMD2's GAN term on the generator
    # and on D_fake with its head (`dmd_gan`; 0: off).
    'dmd': dict(teacher=ORACLE, teacher_steps=5000, teacher_share=0.5,
                teacher_eval_samples=0, teacher_batch_size=0,
                denoisers='network', generator='network',
                fake_init='teacher', fake_steps_per_gen=5, fake_lr=0.0,
                num_sigmas=1000, min_frac=0.02, max_frac=0.98, noised=True,
                fixed_sigma=0.0, normalize=True, regression_weight=0.0,
                regression_pairs=4096, regression_batch=256,
                gan_gen_weight=0.0, gan_disc_weight=0.0),
}

SMOKE = {'dmd': dict(teacher_steps=6, fake_steps_per_gen=2,
                     regression_pairs=64, regression_batch=16)}


def validate(config) -> None:
  """Start-up checks of the `dmd` section (ValueError naming the key)."""
  d = config.dmd
  common.check_no_feature_space(config, NAME)
  config_lib.check_choice('dmd.denoisers', d.denoisers, DENOISER_KINDS)
  config_lib.check_choice('dmd.fake_init', d.fake_init, FAKE_INITS)
  config_lib.check_choice('dmd.generator', d.generator, GENERATORS)
  if d.generator == 'teacher' and (d.denoisers != 'network'
                                   or d.teacher == ORACLE):
    raise ValueError("`dmd.generator='teacher'` needs a trained network "
                     "teacher (dmd.denoisers='network', dmd.teacher='train' "
                     'or a diffusion workdir) to start from.')
  mixtures = (data_lib.GMM_DATASET,) + tuple(distributions.TOY_MIXTURES)
  if d.denoisers == 'network':
    if d.teacher == ORACLE and config.data.name not in mixtures:
      raise ValueError(
          f"`dmd.teacher='oracle'` needs Gaussian-mixture data (one of "
          f'{mixtures}), got data.name={config.data.name!r}; use '
          "dmd.teacher='train' or a path to a diffusion workdir.")
    config_lib.check_prerequisite('dmd.teacher', d.teacher, extra=(ORACLE,))
  if not 0.0 < d.teacher_share < 1.0:
    raise ValueError(f'`dmd.teacher_share` must be in (0, 1), got '
                     f'{d.teacher_share}.')
  for key, zero in (('teacher_eval_samples', 'eval.num_samples'),
                    ('teacher_batch_size', 'train.batch_size')):
    if d.get(key, 0) < 0:
      raise ValueError(f'`dmd.{key}` must be >= 0 (0: {zero}), got '
                       f'{d[key]}.')
  if d.fake_steps_per_gen < 1:
    raise ValueError(f'`dmd.fake_steps_per_gen` must be >= 1, got '
                     f'{d.fake_steps_per_gen}.')
  if not 0.0 <= d.min_frac <= d.max_frac <= 1.0:
    raise ValueError(f'Need 0 <= dmd.min_frac <= dmd.max_frac <= 1, got '
                     f'{d.min_frac}, {d.max_frac}.')
  if d.denoisers == 'kde' and d.regression_weight > 0:
    raise ValueError('`dmd.regression_weight` > 0 needs a network teacher, '
                     "not dmd.denoisers='kde'.")
  _validate_gan(config)
  if config.conditional.enabled and d.denoisers == 'kde':
    raise ValueError("Class-conditional DMD needs dmd.denoisers='network'.")
  micro = config.train.get('microbatches', 1)
  if d.regression_weight > 0 and d.regression_batch % micro:
    raise ValueError(f'`train.microbatches` = {micro} must divide '
                     f'`dmd.regression_batch` = {d.regression_batch}.')


def _validate_gan(config) -> None:
  d = config.dmd
  gen_w, disc_w = d.get('gan_gen_weight', 0.0), d.get('gan_disc_weight', 0.0)
  if gen_w < 0 or disc_w < 0:
    raise ValueError(f'`dmd.gan_gen_weight` and `dmd.gan_disc_weight` must '
                     f'be >= 0, got {gen_w} and {disc_w}.')
  if gen_w == 0 and disc_w == 0:
    return
  if gen_w == 0 or disc_w == 0:
    raise ValueError('DMD2\'s GAN term needs both `dmd.gan_gen_weight` and '
                     f'`dmd.gan_disc_weight` > 0 (got {gen_w} and {disc_w}): '
                     'an untrained head, or one the generator never reads, '
                     'adds nothing.')
  if d.denoisers != 'network' or config.model.denoiser.name not in (
      'unet', 'dit'):
    raise ValueError(
        "DMD2's GAN term reads D_fake's hidden maps: it needs "
        "dmd.denoisers='network' and an image denoiser "
        "(model.denoiser.name='unet' or 'dit'), got "
        f'{d.denoisers!r} and {config.model.denoiser.name!r}.')


def teacher_config(config):
  """The diffusion run a `dmd.teacher='train'` student trains first: same
  data, denoiser and optimiser, `dmd.teacher_steps` steps, EMA,
  checkpointed as often as the student (so a preempted teacher resumes),
  evaluated once at its end on `dmd.teacher_eval_samples` samples, with
  batches of `dmd.teacher_batch_size` where it is set."""
  c = ml_collections.ConfigDict(config.to_dict())
  c.method = diffusion.NAME
  if config.dmd.get('teacher_eval_samples', 0):
    c.eval.num_samples = config.dmd.teacher_eval_samples
  if config.dmd.get('teacher_batch_size', 0):
    c.train.update(batch_size=config.dmd.teacher_batch_size,
                   gen_batch_size=config.dmd.teacher_batch_size)
  steps = config.dmd.teacher_steps
  c.train.update(steps=steps, steps_per_call=1, ema_decay=0.999,
                 eval_every=steps,
                 checkpoint_every=min(config.train.checkpoint_every, steps),
                 log_every=min(config.train.log_every, steps))
  return c


def prerequisites(config) -> dict[str, Prerequisite]:
  """The teacher: none for kde denoisers, the oracle, or a diffusion run."""
  choice = config.dmd.teacher
  if config.dmd.denoisers == 'kde':
    return {}
  if choice == ORACLE:
    return {'teacher': Prerequisite('oracle_teacher')}
  run_config = (teacher_config(config)
                if choice == workdir_lib.TRAIN_HERE else None)
  return {'teacher': Prerequisite('teacher', choice, run_config,
                                  length_key='dmd.teacher_steps',
                                  share_key='dmd.teacher_share')}


@dataclasses.dataclass(frozen=True)
class DMDSpec:
  """Everything a DMD step needs, built once from config and context."""
  gen: common.Network | TeacherGenerator
  fake: common.Network
  gan_head: common.Network | None  # DMD2's GAN head (None: no GAN term)
  teacher: Teacher | None
  fake_from_teacher: bool
  gen_from_teacher: bool
  tx_gen: Any
  tx_fake: Any
  grid: Any  # [num_sigmas] Karras levels
  mesh: Any
  use_kde: bool
  noised: bool
  normalize: bool
  fixed_sigma: float
  sigma_range: tuple[float, float]  # (min_frac, max_frac) of the grid
  fake_steps: int
  regression_weight: float
  regression_batch: int
  gan_gen_weight: float
  gan_disc_weight: float
  sigma_data: float
  noise_dim: int
  gen_batch: int
  ema_decay: float
  num_classes: int
  gen_labels: Any  # [gen_batch] class-major labels, or None
  unroll: bool
  microbatches: int = 1  # train.microbatches


def make(config, ctx: RunContext) -> common.Method:
  """DMD method from the run config (model, optim, diffusion, dmd, train)
  and the run context (prerequisite 'teacher'; `ctx.num_classes` > 0: the
  generator G(z, c), the teacher and D_fake are class-conditional, no
  guidance: alpha = 1)."""
  spec = make_spec(config, ctx)
  constants = {'teacher': None if spec.teacher is None
               else spec.teacher.params}
  if config.dmd.regression_weight > 0:
    constants['regression'] = regression_pairs(config, ctx, spec.teacher)
  return common.Method(functools.partial(init, spec),
                       functools.partial(train_step, spec),
                       functools.partial(sample, spec), constants)


def make_spec(config, ctx: RunContext) -> DMDSpec:
  cfg, teacher = config.dmd, ctx.get('teacher')
  use_kde = cfg.denoisers == 'kde'
  if teacher is None and not use_kde:
    raise ValueError("method='dmd' with dmd.denoisers='network' needs a "
                     'teacher (dmd.teacher).')
  fake = diffusion.make_denoiser_net(config, ctx.dim,
                                     image_shape=ctx.image_shape,
                                     num_classes=ctx.num_classes)
  gen_from_teacher = cfg.generator == 'teacher'
  if gen_from_teacher:
    _check_teacher_generator(config, ctx.dim, teacher, fake)
    gen = TeacherGenerator(fake, config.diffusion.sigma_max)
  else:
    gen_config = common.frozen(config.model.generator)
    gen = common.Network.create(lambda rngs: models.make_generator(
        gen_config, ctx.dim, rngs, image_shape=ctx.image_shape,
        num_classes=ctx.num_classes), precision.compute_dtype(config))
  steps, gen_batch = config.train.steps, config.train.gen_batch_size
  gan_gen_weight = cfg.get('gan_gen_weight', 0.0)
  return DMDSpec(
      gen=gen, fake=fake, teacher=teacher,
      gan_head=(dmd_gan.make_head(fake, ctx.dim) if gan_gen_weight > 0
                else None),
      gan_gen_weight=gan_gen_weight,
      gan_disc_weight=cfg.get('gan_disc_weight', 0.0),
      fake_from_teacher=_fake_from_teacher(cfg, teacher, fake, use_kde),
      gen_from_teacher=gen_from_teacher,
      tx_gen=common.make_optimizer(config.optim, total_steps=steps),
      tx_fake=common.make_optimizer(
          config.optim, cfg.fake_lr or None,
          total_steps=steps * cfg.fake_steps_per_gen),
      grid=noise_lib.karras_sigmas(cfg.num_sigmas, config.diffusion.sigma_min,
                                   config.diffusion.sigma_max,
                                   config.diffusion.rho),
      mesh=ctx.mesh, use_kde=use_kde, noised=cfg.noised,
      normalize=cfg.normalize, fixed_sigma=cfg.fixed_sigma,
      sigma_range=(cfg.min_frac, cfg.max_frac),
      fake_steps=cfg.fake_steps_per_gen,
      regression_weight=cfg.regression_weight,
      regression_batch=cfg.regression_batch,
      sigma_data=config.diffusion.sigma_data,
      noise_dim=config.model.generator.noise_dim, gen_batch=gen_batch,
      ema_decay=config.train.ema_decay, num_classes=ctx.num_classes,
      gen_labels=(data_lib.class_major_labels(gen_batch, ctx.num_classes)
                  if ctx.num_classes else None),
      unroll=common.loop_unroll(ctx.image_shape),
      microbatches=config.train.get('microbatches', 1))


class TeacherGenerator(NamedTuple):
  """DMD2's one-step generator: the denoiser network `den` applied to
  sigma_max z at sigma_max, G(z) = D_theta(sigma_max z, sigma_max) (the
  EDM-preconditioned denoiser's x_0 estimate from pure noise). The same
  `init` / `apply` as a `common.Network`; `alpha` (CFG) is accepted and
  unused: DMD samples without guidance."""
  den: common.Network
  sigma_max: float

  def init(self, key):
    return self.den.init(key)

  def apply(self, params, z, labels=None, alpha=None):
    del alpha
    sigma = jnp.full((z.shape[0],), self.sigma_max, z.dtype)
    return self.den.apply(params, self.sigma_max * z, sigma, labels=labels)


def _check_teacher_generator(config, dim, teacher, fake):
  noise_dim = config.model.generator.noise_dim
  if noise_dim != dim:
    raise ValueError(
        "`dmd.generator='teacher'` denoises noise of the data's shape: set "
        f'model.generator.noise_dim to the data dimension {dim}, got '
        f'{noise_dim}.')
  abstract = jax.eval_shape(fake.init, jax.random.key(0))
  if teacher.params is None or not _same_structure(teacher.params, abstract):
    raise ValueError(
        "`dmd.generator='teacher'`: the teacher's network differs from "
        '`model.denoiser` (parameter structure or shapes), so the '
        'generator cannot start as the teacher. Make model.denoiser match '
        'the teacher run.')


def _same_structure(a, b) -> bool:
  shapes = lambda t: jax.tree.map(lambda v: (v.shape, v.dtype), t)
  return (jax.tree.structure(a) == jax.tree.structure(b)
          and shapes(a) == shapes(b))


def _fake_from_teacher(cfg, teacher, fake, use_kde) -> bool:
  """Whether D_fake starts as the teacher's network (`dmd.fake_init`)."""
  if use_kde:
    return False
  if teacher.params is None or cfg.fake_init == 'scratch':
    logging.info('DMD: D_fake starts from random weights (%s).',
                 'oracle teacher' if teacher.params is None
                 else "dmd.fake_init='scratch'")
    return False
  abstract = jax.eval_shape(fake.init, jax.random.key(0))
  if not _same_structure(teacher.params, abstract):
    raise ValueError(
        "`dmd.fake_init='teacher'`: the teacher's network differs from "
        '`model.denoiser` (parameter structure or shapes), so D_fake cannot '
        'start as the teacher. Make model.denoiser match the teacher run, '
        "or set dmd.fake_init='scratch' to start D_fake from random "
        'weights.')
  return True


def init(spec: DMDSpec, key):
  # DMD2: the generator starts as the teacher's network.
  gen_params = (spec.teacher.params if spec.gen_from_teacher
                else spec.gen.init(key))
  state = {'gen': common.net_state(gen_params, spec.tx_gen,
                                   ema=spec.ema_decay > 0)}
  if not spec.use_kde:
    fake_params = spec.fake.init(jax.random.fold_in(key, 1))
    if spec.fake_from_teacher:
      fake_params = spec.teacher.params  # DMD: D_fake starts as the teacher
    state['fake'] = common.net_state(fake_params, spec.tx_fake, ema=False)
  if spec.gan_head is not None:
    state['gan_head'] = common.net_state(
        spec.gan_head.init(jax.random.fold_in(key, 2)), spec.tx_fake,
        ema=False)
  return state


def _gen_cond(spec: DMDSpec) -> dict:
  """Generator conditioning: class-major labels, alpha = 1 (no CFG)."""
  if spec.gen_labels is None:
    return {}
  return dict(labels=spec.gen_labels, alpha=jnp.ones(spec.gen_labels.shape))


def draw_noise(spec: DMDSpec, key):
  return common.generator_noise(key, spec.gen_batch, spec.noise_dim,
                                spec.mesh)


def fake_update(spec: DMDSpec, fake_state, gen_params, key, gan=None):
  """One denoising-score-matching step of D_fake on sg(G(z)) ->
  (fake_state, its loss, head_state). With `gan` = (head_state, real
  [B, D], real labels or None), DMD2's discriminator loss joins it, and
  D_fake and the head step together.

  Every term is a mean over samples whose noise is drawn for the whole
  batch first, so `spec.microbatches` > 1 accumulates the same gradient
  (`common.accumulated_value_and_grad`)."""
  k_z, k_sigma, k_eps = jax.random.split(key, 3)
  x0 = lax.stop_gradient(spec.gen.apply(gen_params, draw_noise(spec, k_z),
                                        **_gen_cond(spec)))
  x_t, sigma = _noised(spec, x0, k_sigma, k_eps)
  generated = (x_t, sigma, x0, spec.gen_labels)

  def loss_fn(params, x_t, sigma, x0, labels):
    return losses.denoising_loss(
        spec.fake.apply(params, x_t, sigma, labels=labels), x0, sigma,
        spec.sigma_data)

  if gan is None:
    loss, grads = common.accumulated_value_and_grad(
        loss_fn, fake_state['params'], generated, spec.microbatches)
    return common.apply_gradients(fake_state, grads, spec.tx_fake), loss, None
  head_state, real, real_labels = gan
  # As many real images as generated ones (DMD2's batches are equal): the
  # head's real side costs no more than its generated side.
  real = real[:spec.gen_batch]
  real_labels = None if real_labels is None else real_labels[:spec.gen_batch]
  real_t, real_sigma = _noised(
      spec, real, *jax.random.split(jax.random.fold_in(key, 3)))

  def with_gan(params, x_t, sigma, x0, labels, real_t, real_sigma,
               real_labels):
    fake_params, head_params = params
    d = functools.partial(dmd_gan.logits, spec.fake, spec.gan_head,
                          fake_params, head_params)
    gan_loss = dmd_gan.discriminator_loss(
        d(real_t, real_sigma, real_labels), d(x_t, sigma, labels))
    dsm = loss_fn(fake_params, x_t, sigma, x0, labels)
    return dsm + spec.gan_disc_weight * gan_loss, dsm

  (_, loss), (fake_grads, head_grads) = common.accumulated_value_and_grad(
      with_gan, (fake_state['params'], head_state['params']),
      generated + (real_t, real_sigma, real_labels), spec.microbatches,
      has_aux=True)
  return (common.apply_gradients(fake_state, fake_grads, spec.tx_fake), loss,
          common.apply_gradients(head_state, head_grads, spec.tx_fake))


def _noised(spec: DMDSpec, x, k_sigma, k_eps):
  """(x + sigma eps, sigma), sigma uniform over the grid's indices: what
  D_fake is trained on, and what the GAN head reads."""
  sigma, eps = _grid_noise(spec, k_sigma, k_eps, x.shape)
  return x + sigma[:, None] * eps, sigma


def _grid_noise(spec: DMDSpec, k_sigma, k_eps, shape):
  """(sigma [N] uniform over the grid's indices, eps [N, D])."""
  return (noise_lib.sample_grid_sigmas(k_sigma, shape[0], spec.grid),
          jax.random.normal(k_eps, shape))


def generator_gan_loss(spec: DMDSpec, state, x, key):
  """DMD2's generator GAN loss on generated x (D_fake and head fixed)."""
  x_t, sigma = _noised(spec, x, *jax.random.split(key))
  return _gan_loss_at(spec, state, x_t, sigma, spec.gen_labels)


def _gan_loss_at(spec: DMDSpec, state, x_t, sigma, labels):
  return dmd_gan.generator_loss(dmd_gan.logits(
      spec.fake, spec.gan_head, state['fake']['params'],
      state['gan_head']['params'], x_t, sigma, labels))


def denoisers(spec: DMDSpec, state, constants, batch, x):
  """(D_real, D_fake) as functions (x_t, sigma) -> [N, D]."""
  if spec.use_kde:
    data = parallel.gather_global(batch, spec.mesh)
    generated = parallel.gather_global(lax.stop_gradient(x), spec.mesh)
    exclude = not spec.noised  # leave-one-out only at the clean sample
    return (lambda x_t, s: scores.kde_denoiser(x_t, data, s),
            lambda x_t, s: scores.kde_denoiser(
                x_t, generated, s, exclude_self=exclude))
  fake_params, labels = state['fake']['params'], spec.gen_labels
  return (lambda x_t, s: spec.teacher.denoise(constants['teacher'], x_t, s,
                                              labels=labels),
          lambda x_t, s: spec.fake.apply(fake_params, x_t, s, labels=labels))


def direction(spec: DMDSpec, state, constants, batch, x, key):
  """V at generated x [G, D] (no gradient)."""
  k_sigma, k_eps = jax.random.split(key)
  if spec.fixed_sigma > 0:
    sigma = jnp.full((spec.gen_batch,), spec.fixed_sigma)
  else:
    sigma = noise_lib.sample_grid_sigmas(k_sigma, spec.gen_batch, spec.grid,
                                         *spec.sigma_range)
  eps = jax.random.normal(k_eps, x.shape) if spec.noised else None
  real, fake_fn = denoisers(spec, state, constants, batch, x)
  return losses.dmd_direction(x, real, fake_fn, sigma, eps,
                              normalize=spec.normalize)


def _fake_updates(spec: DMDSpec, state, key, real, real_labels):
  """`fake_steps` updates -> (fake_state, head_state or None, last loss)."""
  def body(i, carry):
    fake_state, head_state, _ = carry
    gan = None if head_state is None else (head_state, real, real_labels)
    fake_state, loss, head_state = fake_update(
        spec, fake_state, state['gen']['params'], jax.random.fold_in(key, i),
        gan)
    return fake_state, head_state, loss
  carry = (state['fake'], state.get('gan_head'), jnp.zeros(()))
  if spec.unroll:
    # A Python loop: `fori_loop(unroll=True)` of one trip still emits a
    # while loop (JAX 0.10), in which XLA:CPU ran the U-Net ~5x slower
    # (fake_steps_per_gen=1 took 15-17 s a step, 5 took 3.5 s).
    for i in range(spec.fake_steps):
      carry = body(i, carry)
    return carry
  return lax.fori_loop(0, spec.fake_steps, body, carry)


def train_step(spec: DMDSpec, state, constants, batch, key, step=0):
  del step  # DMD has no schedule
  # The data batch's labels reach only the GAN head's real side: generated
  # labels are fixed.
  batch, real_labels = common.split_batch(batch)
  k_fake, k_dir, k_reg = (jax.random.fold_in(key, i) for i in (1, 2, 3))
  metrics = {}
  if not spec.use_kde:
    fake_state, head_state, fake_loss = _fake_updates(
        spec, state, k_fake, batch, real_labels)
    state = {**state, 'fake': fake_state}
    if head_state is not None:
      state['gan_head'] = head_state
    metrics['train/fake_loss'] = fake_loss
  z = draw_noise(spec, key)
  if spec.microbatches > 1:
    (loss, aux), grads = _accumulated_generator_grads(
        spec, state, constants, batch, z, key, k_dir, k_reg)
  else:
    def loss_fn(params):
      x = spec.gen.apply(params, z, **_gen_cond(spec))
      return _generator_loss(
          spec, x, direction(spec, state, constants, batch, x, k_dir),
          lambda x: generator_gan_loss(spec, state, x,
                                       jax.random.fold_in(key, 4)),
          lambda: regression_loss(spec.gen, params, constants['regression'],
                                  k_reg, spec.regression_batch))

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state['gen']['params'])
  new_gen = common.apply_gradients(state['gen'], grads, spec.tx_gen,
                                   spec.ema_decay)
  metrics.update({'train/loss': loss, **aux})
  return {**state, 'gen': new_gen}, metrics


def _generator_loss(spec: DMDSpec, x, v, gan_loss, regression):
  """(loss, metrics) of the generator at its samples x along the fixed
  direction v: the DMD loss (Yin et al. 2024 Eq. 7), plus DMD2's GAN term
  (`gan_loss(x)`) and the regression loss (`regression()`) where they are
  on."""
  dm = losses.drift_loss(x, v)
  aux = {'train/dm_loss': dm, 'train/regression_loss': jnp.zeros(())}
  if spec.gan_head is not None:
    aux['train/gan_loss'] = gan_loss(x)
    dm = dm + spec.gan_gen_weight * aux['train/gan_loss']
  if spec.regression_weight <= 0:
    return dm, aux
  aux['train/regression_loss'] = regression()
  return dm + spec.regression_weight * aux['train/regression_loss'], aux


def _accumulated_generator_grads(spec: DMDSpec, state, constants, batch, z,
                                 key, k_dir, k_reg):
  """((loss, metrics), gradient) of the generator over
  `spec.microbatches` micro-batches, equal to the whole batch's.

  Two passes, as drifting's (`drifting.two_pass_loss_and_grads`): G(z)
  and the direction V of the whole batch without gradients (a KDE
  denoiser reads the whole generated batch), then the loss's gradient
  micro-batch by micro-batch against that fixed V. The GAN term's noise
  and the regression batch are drawn whole first and split with it: every
  term is a mean over samples, so the micro-batches' mean is the whole
  batch's."""
  params, cond = state['gen']['params'], _gen_cond(spec)
  x = lax.stop_gradient(spec.gen.apply(params, z, **cond))
  inputs = {'z': z, 'cond': cond,
            'v': direction(spec, state, constants, batch, x, k_dir)}
  if spec.gan_head is not None:
    inputs['gan'] = _grid_noise(spec, *jax.random.split(
        jax.random.fold_in(key, 4)), x.shape)
  if spec.regression_weight > 0:
    inputs['regression'] = regression_indices(
        k_reg, spec.regression_batch, constants['regression'])

  def loss_fn(params, inputs):
    x = spec.gen.apply(params, inputs['z'], **inputs['cond'])

    def gan(x):
      sigma, eps = inputs['gan']
      return _gan_loss_at(spec, state, x + sigma[:, None] * eps, sigma,
                          inputs['cond'].get('labels'))

    return _generator_loss(
        spec, x, inputs['v'], gan, lambda: regression_loss_at(
            spec.gen, params, constants['regression'],
            inputs.get('regression')))

  return common.accumulated_value_and_grad(loss_fn, params, (inputs,),
                                           spec.microbatches, has_aux=True)


def sample(spec: DMDSpec, state, constants, key, n):
  """Samples without guidance (alpha = 1)."""
  del constants
  return common.sample_generator(spec.gen, state['gen'], key, n,
                                 noise_dim=spec.noise_dim,
                                 num_classes=spec.num_classes)


def regression_pairs(config, ctx: RunContext, teacher):
  """DMD's paired set: noise z and the teacher's ODE output from it.

  The ODE starts at sigma_max times the first `ctx.dim` noise coordinates,
  so the pair is a fixed deterministic coupling, as DMD's precomputed set.
  """
  make_pairs, z = _pair_maker(config, ctx, teacher)
  return make_pairs(z)


def setups(config) -> tuple[str, ...]:
  """The precomputations a run makes before its first step and a study
  charges to its budget (`studies.budget`): the regression pairs (one
  teacher ODE per pair) when the regression loss is on."""
  return ('regression',) if config.dmd.regression_weight > 0 else ()


def setup_work(config, ctx: RunContext) -> dict:
  """{name: a call that makes that precomputation again} for each of
  `setups`, compiled on its first call, so a calibration times it warm."""
  if not setups(config):
    return {}
  make_pairs, z = _pair_maker(config, ctx, make_spec(config, ctx).teacher)
  return {'regression': lambda: jax.block_until_ready(make_pairs(z))}


def _pair_maker(config, ctx: RunContext, teacher):
  """(jitted z -> {'z', 'y'}, z): the regression pairs' computation. On
  images the solver is unrolled (XLA:CPU runs convolutions in a loop many
  times slower) and runs `eval.sample_chunk` pairs at a time (memory)."""
  cfg, noise_dim = config.dmd, config.model.generator.noise_dim
  dim = ctx.dim
  if teacher is None:
    raise ValueError('`dmd.regression_weight` > 0 needs a teacher.')
  if noise_dim < dim:
    raise ValueError(f'`dmd.regression_weight` > 0 needs '
                     f'model.generator.noise_dim ({noise_dim}) >= data dim '
                     f'({dim}): the teacher ODE starts from the noise.')
  key = jax.random.fold_in(jax.random.key(config.seed), 0x4E6)
  z = jax.random.normal(key, (cfg.regression_pairs, noise_dim))
  sigmas = diffusion.sampling_sigmas(config.diffusion)
  params = teacher.params
  # Conditional: each pair has a class (class-major, as every conditional
  # sample), the teacher's ODE runs at it and the generator is regressed
  # at it, as DMD's class-conditional ImageNet pairs; the label-free
  # embedding row is never trained (the teacher has no label dropout).
  labels = (data_lib.class_major_labels(cfg.regression_pairs,
                                        ctx.num_classes)
            if ctx.num_classes else None)
  ode = jax.jit(lambda z: diffusion.chunked_heun_sample(
      lambda rows: lambda x, s: teacher.denoise(
          params, x, s, labels=None if labels is None else labels[rows]),
      sigmas[0] * z[:, :dim], sigmas,
      chunk=config.eval.get('sample_chunk', 0),
      unroll=common.loop_unroll(ctx.image_shape)))

  def make_pairs(z):
    pairs = {'z': z, 'y': ode(z)}
    if labels is not None:
      pairs['labels'] = labels
    return pairs
  return make_pairs, z


def regression_loss(gen, params, pairs, key, batch):
  """|G(z_reg, c_reg) - y_reg|^2 on a random batch of the regression pairs
  (c_reg: their classes when conditional, at alpha = 1)."""
  return regression_loss_at(gen, params, pairs,
                            regression_indices(key, batch, pairs))


def regression_indices(key, batch, pairs):
  """`batch` random indices of the regression pairs."""
  return jax.random.randint(key, (batch,), 0, pairs['z'].shape[0])


def regression_loss_at(gen, params, pairs, idx):
  """The regression loss on the pairs `idx`."""
  cond = {}
  if 'labels' in pairs:
    cond = dict(labels=pairs['labels'][idx], alpha=jnp.ones(idx.shape))
  pred = gen.apply(params, pairs['z'][idx], **cond)
  return jnp.mean(jnp.sum((pred - pairs['y'][idx])**2, axis=-1))
