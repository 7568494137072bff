"""Optional Weights & Biases logging (`train.wandb_project`), tested with a
fake `wandb` module: the package is an extra the tests never need."""

import sys
import types

import pytest

from drift_jax.train import reporting
from drift_jax.train import runner
from tests.runner_helpers import tiny_config


class _FakeRun:
  def __init__(self, **kwargs):
    self.init = kwargs
    self.logged = []  # (step, {key: value})
    self.finished = False

  def log(self, values, step):
    self.logged.append((step, values))

  def finish(self):
    self.finished = True


def _fake_wandb(runs):
  module = types.ModuleType('wandb')

  def init(**kwargs):
    runs.append(_FakeRun(**kwargs))
    return runs[-1]

  module.init = init
  module.Image = lambda path: ('image', path)
  return module


def test_wandb_gets_what_metrics_jsonl_gets(tmp_path, monkeypatch):
  runs = []
  monkeypatch.setitem(sys.modules, 'wandb', _fake_wandb(runs))
  config = tiny_config(steps=4, log_every=2, eval_every=4,
                       wandb_project='drift', wandb_mode='offline')
  config.eval.plot = True
  runner.train_and_evaluate(config, str(tmp_path))
  (run,) = runs
  assert run.finished
  assert run.init['project'] == 'drift' and run.init['mode'] == 'offline'
  assert run.init['config']['train']['steps'] == 4
  scalars = [(s, v) for s, v in run.logged
             if not any(isinstance(x, tuple) for x in v.values())]
  records = [r for r in reporting.read_metrics(str(tmp_path))
             if 'config/changed' not in r]
  assert [s for s, _ in scalars] == [r['step'] for r in records]
  for (_, values), record in zip(scalars, records, strict=True):
    assert values == {k: v for k, v in record.items() if k != 'step'}
  images = [(s, v) for s, v in run.logged
            if any(isinstance(x, tuple) for x in v.values())]
  assert [s for s, _ in images] == [4]
  assert images[0][1]['samples'][1].endswith('samples_0000004.png')
  # A resumed run continues the same W&B run (its id is the workdir's).
  config.train.steps = 6
  runner.train_and_evaluate(config, str(tmp_path))
  assert runs[1].init['id'] == run.init['id']


def test_a_missing_wandb_package_is_one_line(tmp_path, monkeypatch):
  from drift_jax import methods
  monkeypatch.setitem(sys.modules, 'wandb', None)  # import fails
  config = tiny_config(steps=2, wandb_project='drift')
  with pytest.raises(ValueError, match='`train.wandb_project` needs the '
                     'wandb package'):
    reporting.make_tracker(config, str(tmp_path))
  config.train.wandb_mode = 'sometimes'
  with pytest.raises(ValueError, match='train.wandb_mode'):
    methods.validate(methods.finalize(config), 1)
