"""Each `configs/fashion_mnist.py` variant trains at `runlocal` size through
the runner and scores in the evaluation classifier's features."""

import os

import numpy as np
import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.data import datasets
from drift_jax.data import images as image_data
from drift_jax.train import prerequisites
from drift_jax.train import runner

pytestmark = pytest.mark.skipif(
    not os.path.isdir(image_data.FASHION_MNIST_DIR),
    reason='Fashion-MNIST is not installed '
    f'({image_data.FASHION_MNIST_INSTALL} as root installs it)')


def _config(arg):
  return config_lib.load_config_file(f'configs/fashion_mnist.py:runlocal,{arg}')


@pytest.fixture(scope='module')
def eval_classifier(tmp_path_factory):
  """The runs' evaluation classifier, trained once for the module: it
  depends on the data, their split and the `classifier` section only, so
  every variant below would train this same network."""
  student = methods.finalize(_config('method=drifting'))
  request = prerequisites.eval_classifier(student, datasets.for_run(student))
  directory = str(tmp_path_factory.mktemp('fashion_classifier'))
  runner.train_and_evaluate(request.run_config, directory)
  return directory


@pytest.mark.parametrize('arg, conditional', [
    ('generator=dit,conditional', True),
    ('encoder=classifier', False),
    ('encoder=mae', False),
    ('method=dmd,denoiser=dit', False),
    ('method=diffusion', False),
], ids=['drifting-dit-cfg', 'drifting-classifier', 'drifting-mae', 'dmd-dit',
        'diffusion'])
def test_each_variant_trains_and_scores(tmp_path, eval_classifier, arg,
                                        conditional):
  c = _config(arg)
  c.eval.classifier = eval_classifier
  summary = runner.train_and_evaluate(c, str(tmp_path))
  for key in ('eval/feature_fd', 'eval/feature_fd_floor', 'eval/precision',
              'eval/recall', 'eval/energy_distance'):
    assert np.isfinite(summary[key]), key
  # The data row's floor is far below an untrained-ish generator's FD.
  assert summary['eval/feature_fd'] > summary['eval/feature_fd_floor']
  assert ('eval/class_accuracy' in summary) == conditional
  assert summary['step'] == c.train.steps
