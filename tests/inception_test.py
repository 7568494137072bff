"""The Inception-FID evaluator with random weights in pytorch-fid's state
dict layout (nothing is downloaded): shapes, determinism, the layout
conversion, and the errors of a wrong weights file."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.evaluators import inception


def _random_state_dict(seed=0):
  """He-scaled conv weights and non-trivial BatchNorm statistics, plus
  keys the features ignore (pytorch-fid's fc layer)."""
  rng = np.random.default_rng(seed)
  state = {}
  for key, shape in inception.state_dict_shapes().items():
    if key.endswith('conv.weight'):
      fan_in = np.prod(shape[1:])
      state[key] = rng.normal(0, np.sqrt(2 / fan_in), shape)
    elif key.endswith('running_var'):
      state[key] = rng.uniform(0.5, 2.0, shape)
    elif key.endswith('.bn.weight'):
      state[key] = rng.uniform(0.5, 1.5, shape)
    else:
      state[key] = rng.normal(0, 0.1, shape)
  state['fc.weight'] = np.zeros((1008, 2048))
  return {k: np.asarray(v, np.float32) for k, v in state.items()}


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
  path = tmp_path_factory.mktemp('inception') / 'inception.npz'
  np.savez(path, **_random_state_dict())
  return str(path)


@pytest.fixture(scope='module')
def scorer(weights):
  """The evaluator on 6 held-out and 6 floor images (one compiled batch
  shape for every test here)."""
  rng = np.random.default_rng(2)
  images = rng.uniform(-1, 1, (12, 28 * 28)).astype(np.float32)
  dataset = types.SimpleNamespace(image_shape=(28, 28, 1),
                                  held_out=images[:6],
                                  floor_reference=images[6:])
  return inception.InceptionFID(dataset, weights), images


def test_features_have_their_shape_and_are_deterministic(scorer):
  scorer, images = scorer
  a, b = scorer.features(images[:6]), scorer.features(images[:6])
  assert a.shape == (6, inception.FEATURES)
  assert np.all(np.isfinite(a)) and float(np.std(a)) > 0
  np.testing.assert_array_equal(a, b)
  assert float(np.max(np.abs(a[0] - a[1]))) > 0  # images differ


def test_the_evaluator_scores_against_held_out_images(scorer):
  """The held-out images against themselves score ~0 (float32 square
  roots of rank-5 2048 x 2048 covariances leave about 2 % of the floor
  here; 5 % allowed), far below the floor of other images against them."""
  scorer, images = scorer
  floor = scorer.floors['eval/inception_fid_floor']
  assert np.isfinite(floor) and floor > 0
  self_fid = scorer(images[:6])['eval/inception_fid']
  assert abs(self_fid) < 0.05 * floor


def test_first_layer_is_pytorchs_conv_and_batchnorm(weights):
  """The HWIO kernel and the folded BatchNorm against the state dict
  applied as PyTorch does (OIHW, NCHW, eval-mode statistics)."""
  state = inception.load_state_dict(weights)
  params = inception.params_from_state_dict(state)
  x = jax.random.normal(jax.random.key(1), (2, 9, 9, 3))
  got = inception._basic(params, 'Conv2d_1a_3x3', x)
  y = jax.lax.conv_general_dilated(
      jnp.transpose(x, (0, 3, 1, 2)), state['Conv2d_1a_3x3.conv.weight'],
      (2, 2), 'VALID', dimension_numbers=('NCHW', 'OIHW', 'NCHW'))
  bn = {s: state[f'Conv2d_1a_3x3.bn.{s}'][None, :, None, None]
        for s in ('weight', 'bias', 'running_mean', 'running_var')}
  y = (y - bn['running_mean']) / np.sqrt(bn['running_var'] + 1e-3)
  want = jnp.transpose(jax.nn.relu(y * bn['weight'] + bn['bias']),
                       (0, 2, 3, 1))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_wrong_weights_are_one_clear_line(tmp_path, weights):
  state = _random_state_dict()
  del state['Mixed_7c.branch_pool.bn.running_var']
  with pytest.raises(ValueError, match="'Mixed_7c.branch_pool.bn.running_var"
                     "' is missing"):
    inception.params_from_state_dict(state)
  state = _random_state_dict()
  state['Conv2d_1a_3x3.conv.weight'] = np.zeros((32, 1, 3, 3))
  with pytest.raises(ValueError, match=r'has shape \(32, 1, 3, 3\)'):
    inception.params_from_state_dict(state)
  with pytest.raises(FileNotFoundError, match='inception_weights'):
    inception.load_state_dict(str(tmp_path / 'absent.npz'))
  c = config_lib.load_config_file('configs/digits.py:runlocal')
  c.eval.evaluators = ('distances', 'inception')
  with pytest.raises(ValueError, match='`eval.inception_weights` is empty'):
    methods.validate(methods.finalize(c), 1)
