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
   with L2 instead of LPIPS as DMD's own CIFAR ablation).

D_real is the teacher (`Teacher`): the exact mixture denoiser (oracle), or a
trained `diffusion` network, frozen and passed as a constant. With
`dmd.denoisers='kde'` both denoisers are the exact posterior means of the
empirical data and generated batches (`scores.kde_denoiser`); evaluated at
the clean x (`noised=False`) with one `fixed_sigma` and `normalize=False`
this is the Gaussian `nw` drifting field (DESIGN.md, "The bridge").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax import losses
from drift_jax import models
from drift_jax import noise as noise_lib
from drift_jax import parallel
from drift_jax import scores
from drift_jax.methods import common
from drift_jax.methods import diffusion

DENOISER_KINDS = ('network', 'kde')


class Teacher(NamedTuple):
  """A frozen real-data denoiser and what it cost to make."""
  denoise: Callable[[Any, jax.Array, jax.Array], jax.Array]  # (p, x, s)
  params: Any  # pytree of frozen arrays (None for the oracle)
  steps: int = 0  # training steps spent on it (0: oracle)
  seconds: float = 0.0  # wall time spent training it


def oracle_teacher(mixture) -> Teacher:
  """The exact `GaussianMixture.denoiser` (GMM data only)."""
  return Teacher(lambda params, x, s: mixture.denoiser(x, s), None)


def _same_structure(a, b) -> bool:
  shapes = lambda t: jax.tree.map(lambda v: (v.shape, v.dtype), t)
  return (jax.tree.structure(a) == jax.tree.structure(b)
          and shapes(a) == shapes(b))


def make(config, *, dim: int, mesh, teacher: Teacher | None = None,
         image_shape=None, num_classes: int = 0, encoder=None
         ) -> common.Method:
  """DMD method from the run config (model, optim, diffusion, dmd, train).

  With `num_classes` > 0 the generator G(z, c), the teacher D_real(x, s, c)
  and the fake denoiser D_fake(x, s, c) are class-conditional (no guidance:
  alpha = 1); generated labels are class-major over the batch.
  """
  del encoder
  cfg = config.dmd
  use_kde = cfg.denoisers == 'kde'
  if teacher is None and not use_kde:
    raise ValueError("method='dmd' with dmd.denoisers='network' needs a "
                     'teacher (dmd.teacher).')
  if num_classes and (use_kde or cfg.regression_weight > 0):
    raise ValueError("Class-conditional DMD needs dmd.denoisers='network' "
                     'and dmd.regression_weight=0.')
  gen = common.Network.create(lambda rngs: models.make_generator(
      config.model.generator, dim, rngs, image_shape=image_shape,
      num_classes=num_classes))
  fake = diffusion.make_denoiser_net(config, dim, image_shape=image_shape,
                                     num_classes=num_classes)
  gen_labels = (common.class_major_labels(config.train.gen_batch_size,
                                          num_classes)
                if num_classes else None)
  extra = common.cond_args(gen_labels)
  gen_extra = common.cond_args(
      gen_labels, None if gen_labels is None else
      jnp.ones(gen_labels.shape))
  noise_dim = config.model.generator.noise_dim
  steps = config.train.steps
  tx_gen = common.make_optimizer(config.optim, total_steps=steps)
  tx_fake = common.make_optimizer(config.optim, cfg.fake_lr or None,
                                  total_steps=steps * cfg.fake_steps_per_gen)
  gen_batch, ema_decay = config.train.gen_batch_size, config.train.ema_decay
  grid = noise_lib.karras_sigmas(cfg.num_sigmas, config.diffusion.sigma_min,
                                 config.diffusion.sigma_max,
                                 config.diffusion.rho)
  sigma_data = config.diffusion.sigma_data
  constants = {'teacher': None if teacher is None else teacher.params}
  if cfg.regression_weight > 0:
    constants['regression'] = _regression_pairs(config, dim, teacher)

  def init(key):
    state = {'gen': common.net_state(gen.init(key), tx_gen,
                                     ema=ema_decay > 0)}
    if not use_kde:
      fake_params = fake.init(jax.random.fold_in(key, 1))
      if teacher is not None and teacher.params is not None and (
          _same_structure(teacher.params, fake_params)):
        fake_params = teacher.params  # DMD: D_fake starts as the teacher
      state['fake'] = common.net_state(fake_params, tx_fake, ema=False)
    return state

  def draw_noise(key):
    return common.generator_noise(key, gen_batch, noise_dim, mesh)

  def fake_update(fake_state, gen_params, key):
    k_z, k_sigma, k_eps = jax.random.split(key, 3)
    x0 = lax.stop_gradient(gen.apply(gen_params, draw_noise(k_z),
                                     *gen_extra))
    sigma = noise_lib.sample_grid_sigmas(k_sigma, gen_batch, grid)
    x_t = x0 + sigma[:, None] * jax.random.normal(k_eps, x0.shape)

    def loss_fn(params):
      return losses.denoising_loss(fake.apply(params, x_t, sigma, *extra),
                                   x0, sigma, sigma_data)

    loss, grads = jax.value_and_grad(loss_fn)(fake_state['params'])
    return common.apply_gradients(fake_state, grads, tx_fake), loss

  def denoisers(state, constants, batch, x):
    if use_kde:
      data = parallel.gather_global(batch, mesh)
      generated = parallel.gather_global(lax.stop_gradient(x), mesh)
      exclude = not cfg.noised  # leave-one-out only at the clean sample
      return (lambda x_t, s: scores.kde_denoiser(x_t, data, s),
              lambda x_t, s: scores.kde_denoiser(
                  x_t, generated, s, exclude_self=exclude))
    fake_params = state['fake']['params']
    return (lambda x_t, s: teacher.denoise(constants['teacher'], x_t, s,
                                           *extra),
            lambda x_t, s: fake.apply(fake_params, x_t, s, *extra))

  def direction(state, constants, batch, x, key):
    """V at generated x [G, D] (no gradient)."""
    k_sigma, k_eps = jax.random.split(key)
    if cfg.fixed_sigma > 0:
      sigma = jnp.full((gen_batch,), cfg.fixed_sigma)
    else:
      sigma = noise_lib.sample_grid_sigmas(k_sigma, gen_batch, grid,
                                           cfg.min_frac, cfg.max_frac)
    eps = jax.random.normal(k_eps, x.shape) if cfg.noised else None
    real, fake_fn = denoisers(state, constants, batch, x)
    return losses.dmd_direction(x, real, fake_fn, sigma, eps,
                                normalize=cfg.normalize)

  def train_step(state, constants, batch, key):
    batch, _ = common.split_batch(batch)  # labels: class-major, known
    k_fake, k_dir, k_reg = (jax.random.fold_in(key, i) for i in (1, 2, 3))
    metrics = {}
    if not use_kde:
      def fake_body(i, carry):
        fake_state, _ = carry
        return fake_update(fake_state, state['gen']['params'],
                           jax.random.fold_in(k_fake, i))
      fake_state, fake_loss = lax.fori_loop(
          0, cfg.fake_steps_per_gen, fake_body,
          (state['fake'], jnp.zeros(())),
          unroll=common.loop_unroll(image_shape))
      state = {**state, 'fake': fake_state}
      metrics['train/fake_loss'] = fake_loss
    z = draw_noise(key)

    def loss_fn(params):
      x = gen.apply(params, z, *gen_extra)
      v = direction(state, constants, batch, x, k_dir)
      dm = losses.drift_loss(x, v)
      if cfg.regression_weight <= 0:
        return dm, (dm, jnp.zeros(()))
      reg = _regression_loss(gen, params, constants['regression'], k_reg,
                             cfg.regression_batch)
      return dm + cfg.regression_weight * reg, (dm, reg)

    (loss, (dm, reg)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state['gen']['params'])
    new_gen = common.apply_gradients(state['gen'], grads, tx_gen, ema_decay)
    metrics.update({'train/loss': loss, 'train/dm_loss': dm,
                    'train/regression_loss': reg})
    return {**state, 'gen': new_gen}, metrics

  def sample(state, constants, key, n):
    del constants
    z = jax.random.normal(key, (n, noise_dim))
    labels = (common.class_major_labels(n, num_classes) if num_classes
              else None)
    alpha = None if labels is None else jnp.ones((n,))
    return gen.apply(common.eval_params(state['gen']), z,
                     *common.cond_args(labels, alpha))

  return common.Method(init, train_step, sample, constants)


def _regression_pairs(config, dim, teacher):
  """DMD's paired set: noise z and the teacher's ODE output from it.

  The ODE starts at sigma_max times the first `dim` noise coordinates, so
  the pair is a fixed deterministic coupling, as DMD's precomputed set.
  """
  cfg, noise_dim = config.dmd, config.model.generator.noise_dim
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
  y = jax.jit(lambda z: diffusion.heun_sample(
      lambda x, s: teacher.denoise(params, x, s), sigmas[0] * z[:, :dim],
      sigmas))(z)
  return {'z': z, 'y': y}


def _regression_loss(gen, params, pairs, key, batch):
  idx = jax.random.randint(key, (batch,), 0, pairs['z'].shape[0])
  pred = gen.apply(params, pairs['z'][idx])
  return jnp.mean(jnp.sum((pred - pairs['y'][idx])**2, axis=-1))
