"""A new evaluator is one module plus one registry line (tests/ holds one)."""

import os

import numpy as np
import pytest

from drift_jax import evaluators
from drift_jax import methods
from drift_jax.studies import store
from drift_jax.studies import sweep
from drift_jax.train import reporting
from drift_jax.train import runner
from tests import mean_offset_evaluator
from tests import runner_helpers


def _config():
  c = runner_helpers.tiny_config('drifting', 'gmm', steps=6)
  c.eval.evaluators = ('distances', 'mean_offset')
  return c


def test_unregistered_evaluator_is_refused_naming_the_key():
  with pytest.raises(ValueError, match='eval.evaluators'):
    methods.validate(_config(), 1)


def test_one_registry_line_makes_an_evaluator_run(monkeypatch, tmp_path):
  # The registry line:
  monkeypatch.setitem(evaluators.EVALUATORS, 'mean_offset',
                      mean_offset_evaluator.EVALUATOR)
  c = _config()
  summary = runner.train_and_evaluate(c, str(tmp_path))
  samples = np.load(os.path.join(tmp_path, runner.SAMPLES_FILE))
  held_out = runner.make_scorer(c, str(tmp_path))._scorers[1]  # noqa: SLF001
  expected = float(np.linalg.norm(samples.mean(0) - held_out._mean))  # noqa: SLF001
  assert summary['eval/mean_offset'] == pytest.approx(expected, rel=1e-6)
  records = [r for r in reporting.read_metrics(str(tmp_path))
             if 'eval/mean_offset' in r]
  assert records and records[-1]['eval/mean_offset'] == summary[
      'eval/mean_offset']
  # 'mixture' was not asked for, so none of its metrics was logged.
  assert 'eval/modes_covered' not in summary
  # Stored results, labels and sweep columns come from the registry.
  assert 'eval/mean_offset' in store.kept(summary)
  assert evaluators.label('eval/mean_offset') == 'mean offset'
  assert 'eval/mean_offset' in sweep.table_metrics()
