"""The loaders of finished pre-training runs (classifier, MAE, autoencoder)
refuse a folder that is not a run of their method in one line naming it
(`drift_jax.encoders.pretrained.read_run`)."""

import json

import pytest

from drift_jax.encoders import classifier
from drift_jax.encoders import latent
from drift_jax.encoders import mae
from drift_jax.train import workdir as workdir_lib

LOADERS = {
    'classifier': (classifier.load, 'a classifier must be a '
                   '`method=classifier` run'),
    'mae': (mae.load, "features.encoder_kind='mae' needs a `method=mae` "
            'run'),
    'autoencoder': (latent.load, '`latent.autoencoder` needs a '
                    '`method=autoencoder` run'),
}


class _Images:
  name = 'images'
  image_shape = (8, 8, 1)
  num_classes = 10


@pytest.mark.parametrize('kind', sorted(LOADERS))
def test_a_folder_without_a_run_is_refused_naming_it(kind, tmp_path):
  load, _ = LOADERS[kind]
  folder = tmp_path / 'odd{name}'  # braces pass through the message
  folder.mkdir()
  with pytest.raises(FileNotFoundError,
                     match=rf"'{folder}' holds no {kind} run"):
    load(str(folder), _Images())


@pytest.mark.parametrize('kind', sorted(LOADERS))
def test_a_run_of_another_method_is_refused_naming_both(kind, tmp_path):
  load, needs = LOADERS[kind]
  (tmp_path / workdir_lib.CONFIG_FILE).write_text(
      json.dumps({'method': 'drifting'}))
  with pytest.raises(ValueError) as raised:
    load(str(tmp_path), _Images())
  message = str(raised.value)
  assert f"{str(tmp_path)!r} is a 'drifting' run; {needs}." in message
