"""The masked-autoencoder ResNet: masks, the masked-only loss, feature maps
and one pre-training step."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from drift_jax.fields import features
from drift_jax.methods import mae as mae_method
from drift_jax.models import mae

SHAPE = (28, 28, 1)


def test_mask_hides_exactly_the_ratio_of_whole_patches():
  m = np.asarray(mae.patch_mask(jax.random.key(0), 5, SHAPE, 2, 0.5))
  assert m.shape == (5, 784) and set(np.unique(m)) == {0.0, 1.0}
  grid = m.reshape(5, 14, 2, 14, 2)
  # Constant inside each 2x2 patch, 98 of the 196 patches masked per image.
  assert np.all(grid == grid[:, :, :1, :, :1])
  np.testing.assert_array_equal(grid[:, :, 0, :, 0].sum(axis=(1, 2)), [98] * 5)
  other = np.asarray(mae.patch_mask(jax.random.key(1), 5, SHAPE, 2, 0.5))
  assert not np.array_equal(m, other)
  with pytest.raises(ValueError, match='does not tile'):
    mae.patch_mask(jax.random.key(0), 1, SHAPE, 3, 0.5)


def test_the_loss_covers_only_the_masked_patches():
  key = jax.random.key(0)
  target = jax.random.normal(key, (4, 784))
  mask = mae.patch_mask(jax.random.key(1), 4, SHAPE, 2, 0.5)
  wrong = jax.random.normal(jax.random.key(2), (4, 784))
  # Wrong only where unmasked: no loss. Wrong where masked: the mean
  # squared error over the masked pixels.
  visible_wrong = target + (1 - mask) * wrong
  assert float(mae.masked_mse(visible_wrong, target, mask)) == 0.0
  masked_wrong = target + mask * wrong
  expected = float(jnp.sum(mask * wrong**2) / jnp.sum(mask))
  np.testing.assert_allclose(mae.masked_mse(masked_wrong, target, mask),
                             expected, rtol=1e-6)


def test_the_network_sees_only_the_visible_pixels():
  spec = mae_method.make_spec(_section(width=4, blocks=(1, 1)), SHAPE, 10)
  params = mae_method.init(spec, None)['params']
  images = jax.random.normal(jax.random.key(0), (3, 784))
  mask = mae.patch_mask(jax.random.key(1), 3, SHAPE, 2, 0.5)
  reconstruct = jax.jit(
      lambda p, x: nnx.merge(spec.graphdef, p).reconstruct(x))
  # Editing masked pixels changes the target, never the input.
  edited = images + mask * 3.0
  np.testing.assert_array_equal(reconstruct(params, images * (1 - mask)),
                                reconstruct(params, edited * (1 - mask)))
  loss = jax.jit(functools.partial(mae_method.loss_terms, spec))
  base, _ = loss(params, images, mask)
  moved, _ = loss(params, edited, mask)
  assert float(moved) != float(base)


def _section(**overrides):
  section = dict(mae_method.CONFIG['mae'])
  section.update(overrides)
  return ml_collections.ConfigDict(section)


@pytest.mark.parametrize('blocks, shapes', [
    ((1, 1, 1, 1), [(28, 28, 4), (14, 14, 8), (7, 7, 16), (4, 4, 32)]),
    # A 3-block stage adds its second block's output.
    ((3, 1), [(28, 28, 4), (28, 28, 4), (14, 14, 8)]),
])
def test_feature_maps_are_every_second_block_and_each_stage(blocks, shapes):
  model = mae.MAEResNet(SHAPE, width=4, blocks=blocks, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(0), (2, 784))
  maps = nnx.jit(lambda m, x: m.feature_maps(x))(model, x)
  assert [m.shape[1:] for m in maps] == shapes
  assert nnx.jit(lambda m, x: m.reconstruct(x))(model, x).shape == (2, 784)
  # Every map gives the multi-scale sets, each [L, N, F].
  sets = features.feature_sets(maps, raw=x)
  assert sets['map0/loc'].shape == (784, 2, 4)
  assert sets['map0/global_mean'].shape == (1, 2, 4)
  assert sets['map0/patch4_std'].shape == (49, 2, 4)
  assert sets['raw'].shape == (1, 2, 784)


def test_one_step_lowers_the_loss_and_the_head_is_optional():
  for cls_weight in (0.0, 0.5):
    spec = mae_method.make_spec(_section(width=4, blocks=(1, 1), lr=1e-2,
                                         batch_size=8, cls_weight=cls_weight),
                                SHAPE, 10)
    state = mae_method.init(spec, None)
    images = jax.random.uniform(jax.random.key(0), (32, 784), minval=-1)
    constants = {'images': images, 'labels': jnp.arange(32) % 10}
    step = jax.jit(functools.partial(mae_method.train_step, spec,
                                     constants=constants, batch=None,
                                     key=None))
    first = None
    for t in range(5):
      state, metrics = step(state=state, step=t)
      first = metrics['train/loss'] if first is None else first
    assert ('train/cross_entropy' in metrics) == bool(cls_weight)
    # Same minibatch and mask stream from mae.seed: step 0 again is lower.
    _, again = step(state=state, step=0)
    assert float(again['train/loss']) < float(first)
