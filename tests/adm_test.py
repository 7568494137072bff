"""The EDM-ADM U-Net with attention (`model.denoiser.name='adm'`): DMD2's
ImageNet-64 size counts DMD2's parameters, a fresh network is the EDM skip
path, attention and conditioning reach the output, and it trains as DMD's
fake score through the runner's step."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from drift_jax import methods
from drift_jax.models import adm
from drift_jax.theory import noise as noise_lib
from tests import runner_helpers

SMALL = dict(channels=16, mults=(1, 2), blocks=1, attention=(4,),
             head_channels=8)


def _count(module_fn) -> int:
  _, params = nnx.split(nnx.eval_shape(module_fn))
  return sum(math.prod(a.shape) for a in jax.tree.leaves(params))


def test_dmd2_imagenet64_size_counts_its_parameters():
  """192 channels, multipliers 1-4, 3 blocks, attention at 32/16/8 on
  64x64x3 with 1,000 classes: DMD2's teacher has about 296M."""
  count = _count(lambda: adm.ADMDenoiser((64, 64, 3), num_classes=1000,
                                         rngs=nnx.Rngs(0)))
  assert 290e6 < count < 300e6, count


def _small(num_classes=10):
  return adm.ADMDenoiser((8, 8, 1), num_classes=num_classes, **SMALL,
                         rngs=nnx.Rngs(0))


def test_a_fresh_network_is_the_skip_path():
  """Zero-initialised output conv: F = 0, so D(x) = c_skip(sigma) x."""
  net = _small()
  x = jax.random.normal(jax.random.key(0), (3, 64))
  sigma = jnp.array([0.1, 1.0, 10.0])
  c_skip, _, _, _ = noise_lib.edm_preconditioning(sigma, net.sigma_data)
  np.testing.assert_allclose(nnx.jit(lambda m, x, s: m(x, s))(net, x, sigma),
                             c_skip[:, None] * x, rtol=1e-6)


def test_attention_and_labels_reach_the_output():
  """With every weight random (nothing zero-initialised), changing one
  image's pixels changes that image's attention output at every position,
  and the label changes the output."""
  net = _small()
  _, state = nnx.split(net)
  noisy = jax.tree.map(
      lambda a: jax.random.normal(jax.random.key(a.size), a.shape) * 0.2,
      state)
  nnx.update(net, noisy)
  x = jax.random.normal(jax.random.key(1), (2, 64))
  apply = nnx.jit(lambda m, x, labels: m(x, jnp.ones(2), labels))
  out = apply(net, x, jnp.array([1, 2]))
  other = apply(net, x, jnp.array([3, 2]))
  assert not np.allclose(out[0], other[0])  # its label changed
  np.testing.assert_array_equal(out[1], other[1])  # its label did not
  # downs: the 8x8 level's block, the downsampling, the 4x4 level's block
  # and its attention.
  attention = net.downs[2][1]
  assert isinstance(attention, adm.Attention)
  h = jax.random.normal(jax.random.key(2), (1, 4, 4, 32))
  moved = h.at[0, 0, 0].add(1.0)
  gap = np.abs(attention(moved) - attention(h))[0]
  # Every other position's output moves: attention mixes positions.
  assert (gap.reshape(16, -1).max(-1)[1:] > 0).all()


def test_dmd_trains_with_the_adm_fake_score():
  c = runner_helpers.tiny_image_dmd_config(**{
      'model.denoiser.name': 'adm', 'dmd.fake_steps_per_gen': 1})
  methods.runlocal(c)
  c.dmd.fake_steps_per_gen = 1  # one fake update: it compiles faster
  c.train.gen_batch_size = 4
  method, den = runner_helpers.tiny_image_dmd(c)
  state = method.init(jax.random.key(0))
  batch = jax.random.uniform(jax.random.key(1), (c.train.batch_size, 64))
  new, metrics = jax.jit(method.train_step)(state, method.constants, batch,
                                            jax.random.key(2))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                       new['fake']['params'], state['fake']['params'])
  assert max(jax.tree.leaves(moved)) > 0
  assert den.graphdef is not None


def test_bad_sizes_name_the_key():
  c = methods.base_config()
  c.model.denoiser.update(name='adm', adm_blocks=0)
  with pytest.raises(ValueError, match='model.denoiser.adm_blocks'):
    methods.validate(c, 1)
