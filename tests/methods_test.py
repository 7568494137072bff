"""Methods as pure functions: the kde-DMD = Gaussian drifting bridge, and
the building blocks (Heun sampler, regression pairs)."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import fields
from drift_jax import methods
from drift_jax.methods import diffusion
from drift_jax.methods import dmd
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from drift_jax.theory import distributions
from drift_jax.train import prerequisites
from tests import runner_helpers

SIGMA = 0.3


def _bridge_configs():
  base = methods.base_config()
  methods.runlocal(base)
  drifting = base.copy_and_resolve_references()
  drifting.method = 'drifting'
  drifting.field.update(kernel='gaussian', temperatures=(SIGMA,),
                        normalization='nw', mask_self=True)
  dmd_config = base.copy_and_resolve_references()
  dmd_config.method = 'dmd'
  dmd_config.dmd.update(denoisers='kde', noised=False, fixed_sigma=SIGMA,
                        normalize=False)
  return drifting, dmd_config


def test_kde_dmd_step_equals_gaussian_nw_drifting_step():
  """The bridge (Lai et al. 2026: kde-DMD at clean x with one sigma and
  no L1 normalisation is Gaussian `nw` drifting), through the methods'
  own train steps."""
  mesh = parallel.make_mesh(-1)
  drifting_config, dmd_config = _bridge_configs()
  built = [methods.get(c.method).make(c, RunContext(dim=2, mesh=mesh))
           for c in (drifting_config, dmd_config)]
  key = jax.random.key(3)
  batch = distributions.sample_checkerboard(jax.random.key(4), 64)
  results = []
  for method in built:
    state = method.init(key)
    new_state, metrics = jax.jit(method.train_step)(
        state, method.constants, batch, jax.random.key(5))
    results.append((state, new_state, metrics))
  (s0, s1, m1), (t0, t1, m2) = results
  jax.tree.map(np.testing.assert_array_equal, s0['gen']['params'],
               t0['gen']['params'])
  assert m1['train/loss'] > 0
  # Same V (mean V^2 / 2) and the same Adam step; float32 round-off only
  # (a flipped Adam sign would show as a 2 lr = 2e-3 difference).
  np.testing.assert_allclose(m2['train/dm_loss'], m1['train/loss'],
                             rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
               s1['gen']['params'], t1['gen']['params'])


def test_kde_direction_is_not_the_field_once_noised():
  """Turning on one DMD ingredient (noised evaluation) changes V: the test
  above is not vacuous."""
  mesh = parallel.make_mesh(1)
  drifting_config, dmd_config = _bridge_configs()
  dmd_config.dmd.noised = True
  ctx = RunContext(dim=2, mesh=mesh)
  a = methods.get('drifting').make(drifting_config, ctx)
  b = methods.get('dmd').make(dmd_config, ctx)
  batch = distributions.sample_checkerboard(jax.random.key(4), 64)
  key = jax.random.key(3)
  _, ma = a.train_step(a.init(key), a.constants, batch, jax.random.key(5))
  _, mb = b.train_step(b.init(key), b.constants, batch, jax.random.key(5))
  assert abs(float(mb['train/dm_loss']) / float(ma['train/loss']) - 1) > 0.05


def test_heun_sampler_with_exact_denoiser_recovers_the_mixture():
  """The EDM ODE with the oracle denoiser transports N(0, 80^2) to the GMM;
  with 64 Heun steps the sample mean and covariance match the mixture's
  within Monte-Carlo error (n = 4000, std error ~ 0.7/sqrt(n) = 0.011)."""
  mixture = distributions.two_mode(separation=2.0, std=0.2)
  c = methods.base_config().diffusion
  c.sample_steps = 64
  sigmas = diffusion.sampling_sigmas(c)
  x0 = sigmas[0] * jax.random.normal(jax.random.key(0), (4000, 2))
  x = diffusion.heun_sample(mixture.denoiser, x0, sigmas)
  ref = mixture.sample(jax.random.key(1), 4000)
  np.testing.assert_allclose(jnp.mean(x, 0), jnp.mean(ref, 0), atol=0.05)
  np.testing.assert_allclose(jnp.std(x, 0), jnp.std(ref, 0), atol=0.05)
  # Every sample lands near a mode (within 5 std), none in between.
  dist = jnp.min(jnp.linalg.norm(x[:, None] - mixture.means[None], axis=-1),
                 axis=1)
  assert float(jnp.max(dist)) < 5 * 0.2


def test_regression_pairs_follow_the_teacher_ode():
  mixture = distributions.eight_gaussians()
  c = methods.base_config()
  methods.runlocal(c)
  c.update_from_flattened_dict({'method': 'dmd',
                                'dmd.regression_weight': 0.25})
  teacher = prerequisites.oracle_teacher(mixture)
  method = dmd.make(c, RunContext(dim=2, mesh=parallel.make_mesh(1),
                                  prerequisites={'teacher': teacher}))
  pairs = method.constants['regression']
  assert pairs['z'].shape == (c.dmd.regression_pairs,
                              c.model.generator.noise_dim)
  sigmas = diffusion.sampling_sigmas(c.diffusion)
  again = diffusion.heun_sample(mixture.denoiser,
                                sigmas[0] * pairs['z'][:, :2], sigmas)
  np.testing.assert_allclose(pairs['y'], again, rtol=1e-5, atol=1e-5)
  # A quarter of the pairs at a time (eval.sample_chunk): the same pairs.
  c.eval.sample_chunk = c.dmd.regression_pairs // 4
  chunked = dmd.make(c, RunContext(dim=2, mesh=parallel.make_mesh(1),
                                   prerequisites={'teacher': teacher}))
  np.testing.assert_allclose(chunked.constants['regression']['y'],
                             pairs['y'], rtol=1e-6, atol=1e-6)
  state = method.init(jax.random.key(0))
  _, metrics = method.train_step(state, method.constants,
                                 mixture.sample(jax.random.key(1), 64),
                                 jax.random.key(2))
  assert float(metrics['train/regression_loss']) > 0
  np.testing.assert_allclose(
      metrics['train/loss'],
      metrics['train/dm_loss'] + 0.25 * metrics['train/regression_loss'],
      rtol=1e-6)


class _ClassTeacher:
  """A conditional teacher whose denoiser returns the class index in every
  coordinate (an EDM Heun ODE then ends exactly there); it refuses to run
  without labels, as the label-free row of a trained teacher is untrained."""
  params = None

  def denoise(self, params, x, sigma, labels=None):
    del params, sigma
    assert labels is not None, 'the conditional teacher got no labels'
    return jnp.broadcast_to(labels[:, None].astype(x.dtype), x.shape)


class _ClassGenerator:
  """G(z, c) = c + offset in every coordinate."""

  def __init__(self, offset):
    self.offset = offset

  def apply(self, params, z, labels=None, alpha=None):
    del params, alpha
    assert labels is not None, 'the generator was regressed without labels'
    return jnp.broadcast_to(labels[:, None] + self.offset, (z.shape[0], 2))


def test_conditional_regression_pairs_and_loss_carry_their_classes():
  """DMD's pairs of a class-conditional run: class-major labels, the
  teacher's ODE run at each pair's class, the generator regressed at it."""
  c = methods.base_config()
  methods.runlocal(c)
  c.update_from_flattened_dict({'method': 'dmd',
                                'dmd.regression_weight': 0.25})
  ctx = RunContext(dim=2, mesh=parallel.make_mesh(1), num_classes=4)
  pairs = dmd.regression_pairs(c, ctx, _ClassTeacher())
  n = c.dmd.regression_pairs
  labels = np.repeat(np.arange(4), n // 4)
  np.testing.assert_array_equal(pairs['labels'], labels)
  np.testing.assert_allclose(pairs['y'], np.stack([labels] * 2, axis=1),
                             atol=1e-5)
  key = jax.random.key(0)
  assert float(dmd.regression_loss(_ClassGenerator(0.0), None, pairs, key,
                                   16)) == pytest.approx(0.0, abs=1e-9)
  # Off by one in both coordinates: |(1, 1)|^2 = 2 per pair.
  assert float(dmd.regression_loss(_ClassGenerator(1.0), None, pairs, key,
                                   16)) == pytest.approx(2.0, abs=1e-4)


def test_dmd_without_teacher_is_a_clear_error():
  c = methods.base_config()
  c.method = 'dmd'
  with pytest.raises(ValueError, match='needs a teacher'):
    dmd.make(c, RunContext(dim=2, mesh=parallel.make_mesh(1)))


def test_drift_field_config_reaches_the_field():
  """The drifting method's V is `fields.drifting_field` with the config's
  settings (here 3 temperatures and the authors' normalisations)."""
  c = methods.base_config()
  methods.runlocal(c)
  c.field.update(temperatures=(0.02, 0.05, 0.2), normalize_distances=True,
                 normalize_drift=True)
  from drift_jax.methods import drifting
  field_fn = drifting.field_fn_from_config(c, parallel.make_mesh(1))
  x = jax.random.normal(jax.random.key(0), (32, 2))
  pos = jax.random.normal(jax.random.key(1), (48, 2))
  want = fields.drifting_field(x, pos, x, temperature=(0.02, 0.05, 0.2),
                               normalize_distances=True,
                               normalize_drift=True)
  np.testing.assert_allclose(field_fn(x, pos), want, rtol=1e-6)


def test_ema_warm_up_follows_then_averages():
  import optax

  from drift_jax.methods import common
  tx = optax.sgd(1.0)
  state = common.net_state({'w': jnp.zeros(())}, tx, ema=True)
  grads = {'w': -jnp.ones(())}  # every step moves w by +1
  state = common.apply_gradients(state, grads, tx, ema_decay=0.999)
  # d_0 = min(0.999, 1/10): the EMA moves 90% of the way to w = 1.
  np.testing.assert_allclose(state['ema']['w'], 0.9, rtol=1e-6)
  for _ in range(999):
    state = common.apply_gradients(state, grads, tx, ema_decay=0.999)
  # w = 1000; the EMA trails it, by roughly 1 / (1 - d) steps at most.
  assert 1000 - 1000 < 1000 - float(state['ema']['w']) < 1000
  assert int(state['ema_updates']) == 1000


def test_chunked_heun_sampling_gives_the_same_samples():
  """`eval.sample_chunk` is memory only: chunks of 4 of 6 class-major
  conditional rows (the last one short) give the samples of one call,
  to float32 round-off of batch-size-dependent convolutions."""
  c = methods.base_config()
  methods.runlocal(c)
  c.method = 'diffusion'
  c.model.denoiser.update(name='unet', channels=(4, 8))
  c.diffusion.sample_steps = 2
  ctx = RunContext(dim=64, mesh=parallel.make_mesh(1), num_classes=3,
                   image_shape=(8, 8, 1))
  whole = diffusion.make(c, ctx)
  state = whole.init(jax.random.key(0))
  # A trained-looking state: zero-initialised output layers would make
  # every label's samples alike.
  state = jax.tree.map(lambda p: p + 0.05 * jnp.ones_like(p), state)
  c.eval.sample_chunk = 4
  chunked = diffusion.make(c, ctx)
  key = jax.random.key(1)
  a = jax.jit(whole.sample, static_argnums=3)(state, (), key, 6)
  b = jax.jit(chunked.sample, static_argnums=3)(state, (), key, 6)
  assert a.shape == b.shape == (6, 64)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  # The check has teeth: the labels change the denoiser, so a chunk given
  # another chunk's labels would not match.
  spec = whole.sample.args[0]
  params = state['denoiser']['params']
  x, sigma = a[:4], jnp.full((4,), 1.0)
  assert float(jnp.max(jnp.abs(
      spec.den.apply(params, x, sigma, labels=jnp.zeros(4, jnp.int32))
      - spec.den.apply(params, x, sigma, labels=jnp.ones(4, jnp.int32))))
               ) > 1e-3


def test_dmd2_generator_starts_as_the_teacher_at_sigma_max():
  """`dmd.generator='teacher'`: G(z) = D_theta(sigma_max z, sigma_max) with
  theta the teacher's weights at init; a step moves the generator and
  leaves the teacher's constants alone."""
  c = methods.base_config()
  methods.runlocal(c)
  c.update_from_flattened_dict({
      'method': 'dmd', 'dmd.teacher': '/unused', 'dmd.generator': 'teacher',
      'model.generator.noise_dim': 2, 'diffusion.sigma_max': 5.0})
  mesh = parallel.make_mesh(1)
  den = diffusion.make_denoiser_net(c, 2)
  teacher_params = jax.tree.map(lambda p: p + 0.1,
                                den.init(jax.random.key(7)))
  teacher = dmd.Teacher(den.apply, teacher_params)
  ctx = RunContext(dim=2, mesh=mesh, prerequisites={'teacher': teacher})
  method = dmd.make(c, ctx)
  state = method.init(jax.random.key(0))
  z = jax.random.normal(jax.random.key(1), (8, 2))
  np.testing.assert_array_equal(
      method.sample.args[0].gen.apply(state['gen']['params'], z),
      den.apply(teacher_params, 5.0 * z, jnp.full((8,), 5.0)))
  batch = distributions.sample_checkerboard(jax.random.key(2), 64)
  new, metrics = jax.jit(method.train_step)(state, method.constants, batch,
                                            jax.random.key(3))
  assert np.isfinite(float(metrics['train/loss']))
  moved = max(float(jnp.abs(a - b).max()) for a, b in zip(
      jax.tree.leaves(state['gen']['params']),
      jax.tree.leaves(new['gen']['params']), strict=True))
  assert moved > 0
  for a, b in zip(jax.tree.leaves(method.constants['teacher']),
                  jax.tree.leaves(teacher_params), strict=True):
    np.testing.assert_array_equal(a, b)
  # Noise of another shape than the data's is refused, naming the key.
  c.model.generator.noise_dim = 4
  with pytest.raises(ValueError, match='model.generator.noise_dim'):
    dmd.make(c, ctx)


def test_teacher_run_takes_its_own_evaluation_size_and_batch():
  """`dmd.teacher_eval_samples` and `dmd.teacher_batch_size` set only the
  trained teacher's evaluation size and batch (0 keeps the student's); a
  negative one is refused by name."""
  c = methods.base_config()
  c.update_from_flattened_dict({'method': 'dmd', 'dmd.teacher': 'train',
                                'eval.num_samples': 1000})
  c.train.batch_size = 256
  teacher = dmd.teacher_config(c)
  assert (teacher.eval.num_samples, teacher.train.batch_size) == (1000, 256)
  c.dmd.update(teacher_eval_samples=200, teacher_batch_size=64)
  teacher = dmd.teacher_config(c)
  assert (teacher.method, teacher.eval.num_samples) == ('diffusion', 200)
  assert (teacher.train.batch_size, teacher.train.gen_batch_size) == (64, 64)
  # The student's own are untouched.
  assert (c.eval.num_samples, c.train.batch_size) == (1000, 256)
  for key in ('teacher_eval_samples', 'teacher_batch_size'):
    bad = c.copy_and_resolve_references()
    bad.dmd[key] = -1
    with pytest.raises(ValueError, match=f'dmd.{key}'):
      dmd.validate(bad)


@pytest.mark.parametrize('fake_steps', [1, 3])
def test_dmd_on_images_runs_its_fake_updates_without_a_device_loop(
    fake_steps):
  """On images DMD's fake-denoiser updates are unrolled, one trip
  included: JAX keeps a while loop for `fori_loop(0, 1, unroll=True)`,
  and XLA:CPU runs convolutions inside one several times slower."""
  method, _ = runner_helpers.tiny_image_dmd(
      runner_helpers.tiny_image_dmd_config(**{
          'dmd.fake_steps_per_gen': fake_steps,
          'model.denoiser.channels': (4, 8)}))
  state = method.init(jax.random.key(0))
  batch = jnp.zeros((4, 64))

  def loops(step):  # the jaxpr's device loops (its RNG has none)
    text = str(jax.make_jaxpr(step)(state, method.constants, batch,
                                    jax.random.key(1)))
    return text.count(' while[') + text.count(' scan[')

  assert loops(method.train_step) == 0
  # The check has teeth: the same updates under a device loop show one.
  spec = method.train_step.args[0]
  assert loops(functools.partial(
      dmd.train_step, dataclasses.replace(spec, unroll=False))) == 1
