"""Two-pass gradient accumulation for the drifting loss
(`train.microbatches`, `drifting.two_pass_loss_and_grads`): the gradient
summed over micro-batches equals the full batch's, which single-pass
micro-batching (each micro-batch its own field) does not."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.data import datasets as data_lib
from drift_jax.methods import common
from drift_jax.methods import dmd
from drift_jax.methods import drifting
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from tests import runner_helpers

# The toy config's field is the authors' recipe: distances divided by their
# batch mean, temperatures (0.02, 0.05, 0.2), each temperature's drift
# divided by its RMS: every global normalisation of the loss.
TOY = 'configs/toy2d.py:dataset=checkerboard'


def _config(spec, microbatches, **train):
  c = methods.finalize(config_lib.load_config_file(spec))
  c.train.update(microbatches=microbatches, **train)
  return c


def _grads(config, ctx, z, data, cond=None, labels=None, alpha=None):
  spec = drifting.make_spec(config, ctx)
  params = drifting.init(spec, jax.random.key(0))['gen']['params']
  step = jax.jit(functools.partial(drifting.loss_and_grads, spec))
  return step(params, (), z, cond or {}, data, labels, alpha, None)


def _flat(tree):
  return np.concatenate([np.ravel(a) for a in jax.tree.leaves(tree)])


def _relative_error(a, b):
  a, b = _flat(a), _flat(b)
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize('devices', [1, 8])
def test_four_micro_batches_give_the_full_batch_gradient(devices):
  mesh = parallel.make_mesh(devices)
  ctx = RunContext(dim=2, mesh=mesh)
  full = _config(TOY, 1, gen_batch_size=64, batch_size=64)
  z = jax.random.normal(jax.random.key(1), (64, full.model.generator
                                             .noise_dim))
  data = jax.random.uniform(jax.random.key(2), (64, 2), minval=-2, maxval=2)
  z, data = parallel.shard_batch(z, mesh), parallel.shard_batch(data, mesh)
  loss, rms, grads = _grads(full, ctx, z, data)
  loss4, rms4, grads4 = _grads(_config(TOY, 4, gen_batch_size=64,
                                       batch_size=64), ctx, z, data)
  # The loss and the drift RMS are pass 1's, of the same whole batch.
  np.testing.assert_allclose([loss4, rms4], [loss, rms], rtol=1e-6)
  # Float32 sums of 64 per-sample terms in another order: ~1e-7 relative
  # per term, well under 1e-5 of the largest gradient entry.
  assert _relative_error(grads4, grads) < 1e-5
  # Single-pass micro-batching, each micro-batch's own field and
  # statistics (16 samples), averaged: another gradient.
  singles = [_grads(full, ctx, parallel.shard_batch(z[m::4], mesh),
                    data)[2] for m in range(4)]
  single = jax.tree.map(lambda *g: sum(g) / 4, *singles)
  assert _relative_error(single, grads) > 0.05


def test_class_groups_accumulate_to_the_full_batch_gradient():
  """Class-conditional drifting (grouped fields, CFG's unconditional
  negatives): the micro-batches interleave every class."""
  config = _config('configs/digits.py:conditional,runlocal', 1)
  batch = config.train.gen_batch_size
  ctx = RunContext(dim=64, mesh=parallel.make_mesh(1), image_shape=(8, 8, 1),
                   num_classes=10)
  labels = data_lib.class_major_labels(batch, 10)
  alpha = jnp.linspace(1.0, 2.0, 10)
  cond = dict(labels=labels, alpha=alpha[labels])
  z = jax.random.normal(jax.random.key(1), (batch, config.model.generator
                                            .noise_dim))
  data = jax.random.normal(jax.random.key(2), (batch, 64))
  data_labels = jax.random.permutation(jax.random.key(3), labels)
  loss, rms, grads = _grads(config, ctx, z, data, cond, data_labels, alpha)
  loss2, rms2, grads2 = _grads(_config(
      'configs/digits.py:conditional,runlocal', 2), ctx, z, data, cond,
      data_labels, alpha)
  np.testing.assert_allclose([loss2, rms2], [loss, rms], rtol=1e-6)
  assert _relative_error(grads2, grads) < 1e-5


@pytest.mark.parametrize('overrides, message', [
    (dict(microbatches=3), 'train.microbatches'),
    (dict(microbatches=0), 'train.microbatches'),
])
def test_bad_microbatches_name_the_key(overrides, message):
  config = _config(TOY, 1, gen_batch_size=64, batch_size=64)
  config.train.update(overrides)
  with pytest.raises(ValueError, match=message):
    methods.validate(config, 1)


def test_a_method_without_accumulation_refuses_microbatches():
  config = _config('configs/digits.py:method=classifier', 2)
  with pytest.raises(ValueError, match=r"implemented for method "
                     r"\['diffusion', 'dmd', 'drifting'\] only; "
                     r"method='classifier'"):
    methods.validate(config, 1)


def test_dmd_refuses_a_regression_batch_the_split_does_not_divide():
  config = _config('configs/gmm.py:method=dmd', 4, gen_batch_size=64)
  config.dmd.update(regression_weight=0.5, regression_batch=18)
  with pytest.raises(ValueError, match='dmd.regression_batch'):
    methods.validate(config, 1)


def _dmd(micro, kind):
  """(spec, method, data batch) of DMD: on 8x8 images with network
  denoisers, the GAN term and the regression loss ('network'), or on the
  2-D ring with KDE denoisers, which read the whole generated batch
  ('kde'); generated batches of 16."""
  if kind == 'kde':
    c = _config('configs/gmm.py:method=dmd,runlocal', micro,
                gen_batch_size=16, batch_size=16)
    c.dmd.update(denoisers='kde', regression_weight=0.0)
    ctx = RunContext(dim=2, mesh=parallel.make_mesh(1))
  else:
    c = runner_helpers.tiny_image_dmd_config(**{
        'train.microbatches': micro, 'dmd.gan_gen_weight': 0.5,
        'dmd.gan_disc_weight': 0.5, 'dmd.regression_weight': 0.25,
        'dmd.regression_pairs': 32, 'dmd.regression_batch': 8,
        'dmd.teacher': 'train',  # the context brings a random one
        'dmd.fake_steps_per_gen': 1,
        'model.generator.noise_dim': 64})  # the regression ODE's noise
    c.train.update(gen_batch_size=16, batch_size=16)
    ctx, _ = runner_helpers.tiny_image_dmd_context(c)
  methods.validate(c, 1)
  batch = jax.random.uniform(jax.random.key(1), (16, ctx.dim), minval=-1)
  return dmd.make_spec(c, ctx), dmd.make(c, ctx), batch


@pytest.mark.parametrize('kind', ['network', 'kde'])
def test_dmd_generator_gradient_over_micro_batches_is_the_full_batch(kind):
  """`dmd._accumulated_generator_grads` over 4 micro-batches against 1:
  the same loss, metrics and gradient (the GAN term's noise and the
  regression batch are drawn whole and split; the KDE direction sees the
  whole generated batch)."""
  out = []
  for micro in (1, 4):
    spec, method, batch = _dmd(micro, kind)
    state = method.init(jax.random.key(0))
    key = jax.random.key(2)
    out.append(jax.jit(functools.partial(
        dmd._accumulated_generator_grads, spec))(  # noqa: SLF001
            state, method.constants, batch, dmd.draw_noise(spec, key), key,
            jax.random.fold_in(key, 2), jax.random.fold_in(key, 3)))
  (loss, aux), grads = out[0]
  (loss4, aux4), grads4 = out[1]
  np.testing.assert_allclose(loss4, loss, rtol=1e-6)
  for name in aux:
    np.testing.assert_allclose(aux4[name], aux[name], rtol=1e-5,
                               atol=1e-7, err_msg=name)
  # Sums of 16 per-sample terms in another order: ~1e-7 relative each.
  assert _relative_error(grads4, grads) < 1e-5


def test_dmd_steps_the_same_with_micro_batches():
  """The whole DMD step (a fake update with the GAN head, then the
  generator) with train.microbatches=4: the full batch's metrics, and
  parameters where the undivided step puts them (`disagreement`: Adam
  moves weights whose gradient is rounding noise by ~lr either way)."""
  states, metrics = [], []
  for micro in (1, 4):
    spec, method, batch = _dmd(micro, 'network')
    initial = method.init(jax.random.key(0))
    state, m = jax.jit(method.train_step)(initial, method.constants, batch,
                                          jax.random.key(2))
    states.append(state)
    metrics.append(m)
  for name in metrics[0]:
    np.testing.assert_allclose(metrics[1][name], metrics[0][name],
                               rtol=1e-5, err_msg=name)
  # Measured 2e-3 (the undivided step against itself on 8 devices: 3e-3).
  assert runner_helpers.disagreement(states[1], states[0], initial) < 2e-2


def test_plain_accumulation_is_the_mean_loss_value_and_gradient():
  """`common.accumulated_value_and_grad` (diffusion's accumulation) on a
  per-sample mean loss: the full batch's value and gradient."""
  w = {'a': jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), 'b': jnp.ones(4)}
  x = jax.random.normal(jax.random.key(0), (32, 3))
  y = jax.random.normal(jax.random.key(1), (32, 4))
  def loss(w, x, y):
    return jnp.mean((jnp.tanh(x @ w['a'] + w['b']) - y)**2)
  want = jax.value_and_grad(loss)(w, x, y)
  got = jax.jit(functools.partial(common.accumulated_value_and_grad, loss,
                                  microbatches=4))(w, (x, y))
  np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
  assert _relative_error(got[1], want[1]) < 1e-6
  # A micro-batch's gradient alone is another one.
  assert _relative_error(jax.grad(loss)(w, x[::4], y[::4]), want[1]) > 0.05


def test_diffusion_steps_the_same_with_micro_batches():
  """The diffusion step with train.microbatches=4 logs the full batch's
  loss and moves the parameters as the undivided step does."""
  states, losses = [], []
  for micro in (1, 4):
    config = _config('configs/toy2d.py:method=diffusion,runlocal', micro)
    methods.validate(config, 1)
    method = methods.get('diffusion').make(
        config, RunContext(dim=2, mesh=parallel.make_mesh(1)))
    state = method.init(jax.random.key(0))
    batch = jax.random.normal(jax.random.key(1),
                              (config.train.batch_size, 2))
    state, metrics = jax.jit(method.train_step)(state, method.constants,
                                                batch, jax.random.key(2))
    states.append(state['denoiser']['params'])
    losses.append(metrics['train/loss'])
  np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6)
  assert _relative_error(states[1], states[0]) < 1e-5
