"""Latent-space runs (`latent.autoencoder`, encoders/latent.py): an
autoencoder trained by the runner with its round-trip error, drifting and
DMD (with its teacher) training in its latents at runlocal size, samples
decoded to pixels before scoring, one latent cache per dataset and latent
space, a user's encoder and decoder by path, and one line for bad
settings."""

import json
import os

import jax
import numpy as np
import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.encoders import latent as latent_lib
from drift_jax.methods import autoencoder
from drift_jax.train import runner
from drift_jax.train import sampling

# 8x8 digits -> 4x4x2 latents: 32 numbers, not the 64 pixels, so a run
# that forgot to decode would be caught by its samples' shape.
LATENT = {'autoencoder.latent_channels': 2}


def _config(classifier, method='drifting', **flat):
  c = config_lib.load_config_file(
      f'configs/digits.py:method={method},runlocal')
  c.update_from_flattened_dict({'latent.autoencoder': 'train',
                                'eval.classifier': classifier, **LATENT,
                                **flat})
  return c


@pytest.fixture
def cache(tmp_path, monkeypatch):
  path = tmp_path / 'latent_cache'
  monkeypatch.setenv(latent_lib.CACHE_ENV, str(path))
  return path


def _samples(workdir):
  return np.load(os.path.join(workdir, runner.SAMPLES_FILE))


def test_drifting_and_dmd_train_in_the_latent_space(tmp_path, cache,
                                                    digits_classifier):
  """Drifting, then DMD with a teacher trained in the same latents: both
  score decoded pixel samples; the autoencoder is trained once per
  workdir with its round-trip error logged and charged as an encoder; the
  latents are encoded once (one cache file for both runs)."""
  drift = tmp_path / 'drifting'
  summary = runner.train_and_evaluate(_config(digits_classifier),
                                      str(drift))
  assert _samples(drift).shape == (256, 64)  # pixels, decoded
  assert np.isfinite(summary['eval/feature_fd'])
  assert summary['budget/encoder_steps'] == 20  # the autoencoder's, charged
  with open(drift / 'autoencoder' / 'metrics.jsonl') as f:
    last = [json.loads(line) for line in f][-1]
  assert 0 < last[autoencoder.MSE] < 1.0  # pixels in [-1, 1]
  assert len(list(cache.iterdir())) == 1
  # Loaded for sampling, the run decodes: its evaluation's pixels, exactly.
  np.testing.assert_array_equal(
      sampling.load_generator(str(drift)).sample(256), _samples(drift))

  dmd = tmp_path / 'dmd'
  summary = runner.train_and_evaluate(
      _config(digits_classifier, method='dmd'), str(dmd))
  assert _samples(dmd).shape == (256, 64)
  assert np.isfinite(summary['eval/feature_fd'])
  with open(dmd / 'teacher' / 'config.json') as f:
    # The teacher trains in the student's latents, not in its own.
    assert json.load(f)['latent']['autoencoder'] == str(dmd / 'autoencoder')
  assert not (dmd / 'teacher' / 'autoencoder').exists()
  # The same data and the same (seeded) autoencoder: the same cache.
  assert len(list(cache.iterdir())) == 1
  loaded = sampling.load_generator(str(dmd))
  assert loaded.image_shape == (8, 8, 1)
  np.testing.assert_array_equal(loaded.sample(256), _samples(dmd))


def test_the_round_trip_error_falls_with_training(tmp_path):
  config = methods.finalize(autoencoder.run_config(
      _config('none'), autoencoder.LATENT_SEED, methods.base_config()))
  summary = runner.train_and_evaluate(config, str(tmp_path))
  from drift_jax.data import datasets as data_lib
  from drift_jax.methods.context import RunContext
  from drift_jax.parallel import sharding as parallel
  data = data_lib.for_run(config)
  method = autoencoder.make(config, RunContext(
      dim=data.dim, mesh=parallel.make_mesh(1), image_shape=data.image_shape,
      data=data))
  untrained = autoencoder.evaluate(
      autoencoder.make_spec(config.autoencoder, data.image_shape),
      method.init(jax.random.key(0)), method.constants)
  assert summary[autoencoder.MSE] < 0.5 * untrained[autoencoder.MSE]


USER_MODULE = '''
import jax.numpy as jnp

def load(image_shape):
  h, w, c = image_shape
  def encode(x):  # 2x2 average pooling of the flat images
    x = x.reshape(-1, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    return x.reshape(x.shape[0], -1)
  def decode(z):
    z = z.reshape(-1, h // 2, w // 2, c)
    z = jnp.repeat(jnp.repeat(z, 2, axis=1), 2, axis=2)
    return z.reshape(z.shape[0], -1)
  return dict(encode=encode, decode=decode, latent_shape=(h // 2, w // 2, c))
'''


def test_a_users_encoder_and_decoder_by_path(tmp_path, cache,
                                             digits_classifier):
  module = tmp_path / 'pooling.py'
  module.write_text(USER_MODULE)
  c = _config(digits_classifier, **{'latent.autoencoder': f'python:{module}',
                                    'model.generator.channels': (8,)})
  summary = runner.train_and_evaluate(c, str(tmp_path / 'run'))
  assert _samples(tmp_path / 'run').shape == (256, 64)
  assert np.isfinite(summary['eval/feature_fd'])
  assert summary['budget/encoder_steps'] == 0  # nothing trained
  assert not (tmp_path / 'run' / 'autoencoder').exists()


@pytest.mark.parametrize('flat, message', [
    ({'latent.autoencoder': '/no/such/run'}, 'latent.autoencoder'),
    ({'method': 'classifier'}, 'latent.autoencoder'),
    ({'features.encoder': 'train'}, 'latent.autoencoder'),
])
def test_bad_latent_settings_name_the_key(flat, message):
  c = _config('none', **flat)
  with pytest.raises(ValueError, match=message):
    methods.validate(methods.finalize(c), 1)
