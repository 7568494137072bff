"""A class-conditional run on the streaming bank (`data.draw='stream'`)
saves the bank's state with each checkpoint, so stopping and resuming it
trains exactly the uninterrupted trajectory."""

import json

import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.data import datasets
from drift_jax.methods import autoencoder
from drift_jax.methods import classifier
from drift_jax.methods import mae
from drift_jax.train import runner


def _config(classifier, steps):
  c = config_lib.load_config_file('configs/digits.py:conditional,runlocal')
  c.update_from_flattened_dict({
      'data.draw': 'stream', 'data.bank_size': 16, 'data.bank_push': 20,
      # A constant rate: the first part's train.steps = 3 would otherwise
      # change the cosine schedule of the steps it trains.
      'optim.schedule': 'constant',
      'eval.classifier': classifier, 'train.steps': steps,
      'train.log_every': 1, 'train.checkpoint_every': 3,
      'train.eval_every': 6})
  return c


def _losses(workdir):
  with open(workdir / 'metrics.jsonl') as f:
    return [r['train/loss'] for r in map(json.loads, f) if 'train/loss' in r]


def test_a_streamed_run_resumes_its_batches_exactly(tmp_path,
                                                    digits_classifier):
  whole = tmp_path / 'whole'
  runner.train_and_evaluate(_config(digits_classifier, 6), str(whole))
  parts = tmp_path / 'parts'
  runner.train_and_evaluate(_config(digits_classifier, 3), str(parts))
  assert (parts / 'bank' / 'step_3' / 'process_0.npz').exists()
  runner.train_and_evaluate(_config(digits_classifier, 6), str(parts))
  assert _losses(parts) == _losses(whole)
  assert len(_losses(whole)) == 6


@pytest.mark.parametrize('method', [classifier, mae, autoencoder])
def test_the_networks_a_streamed_run_trains_first_draw_the_default_way(
    method):
  """A prerequisite (an evaluation classifier, an MAE, an autoencoder) is
  an unconditional run whose steps draw their own minibatches: it takes
  the default `data.draw`, not the student's per-class stream, which
  would refuse it (and did, for every streamed run that trained its own
  evaluation classifier)."""
  student = _config('train', 6)
  run = method.run_config(student, 0, methods.base_config())
  assert not run.conditional.enabled
  assert run.data.draw == methods.base_config().data.draw == 'replacement'
  datasets.for_run(run)  # the check that refused 'stream'
