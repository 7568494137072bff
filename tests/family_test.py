"""experiments.family's analysis of the transport-law sweep: the step the
mass moves at, read from a run's metrics, and the fitted exponential
rate (docs/reproduction.md §11)."""

import json

import numpy as np
import pytest

from drift_jax.train import reporting
from experiments import family


def _write_metrics(run_dir, masses):
  with open(run_dir / reporting.METRICS_FILE, 'w') as f:
    for step, mass in masses:
      f.write(json.dumps({'step': step, 'train/loss': 1.0}) + '\n')
      f.write(json.dumps({'step': step, family.MASS_BALANCE: mass}) + '\n')


def test_steps_to_transport_is_the_first_evaluation_past_the_threshold(
    tmp_path):
  _write_metrics(tmp_path, [(50, 0.0), (100, 0.1), (150, 0.3), (200, 0.2)])
  assert family.steps_to_transport(str(tmp_path)) == 150
  assert family.steps_to_transport(str(tmp_path), threshold=0.5) is None


def test_fit_rate_recovers_an_exponential_law():
  """steps = 3 e^(0.5 x) times seed noise of +-10 %: the slope comes back
  within its interval, which is narrow (6 points a ratio, 18 runs), and
  the bootstrap centres on it."""
  rng = np.random.default_rng(0)
  x = np.repeat([16.0, 18, 20, 22, 24, 26], 3)
  steps = 3 * np.exp(0.5 * x) * rng.uniform(0.9, 1.1, x.size)
  rate, (lo, hi), boot = family.fit_rate(x, steps)
  assert lo < 0.5 < hi and hi - lo < 0.05
  assert rate == pytest.approx(0.5, abs=0.02)
  assert np.median(boot) == pytest.approx(rate, abs=0.01)
  # Exact data: the slope is exact.
  assert family.fit_rate(x, np.exp(x))[0] == pytest.approx(1.0, abs=1e-12)


def test_window_sensitivity_is_measured_around_each_fields_optimum():
  """The worse neighbour of the best temperature over the best, with an
  interval from resampled seeds; an optimum at the grid's edge has no
  window and says so."""
  mmd = {0.01: [4.0, 4.2, 3.8], 0.03: [1.0, 1.1, 0.9], 0.1: [2.0, 2.0, 2.0],
         0.3: [8.0, 8.0, 8.0]}
  w = family.window_sensitivity(mmd)
  assert w['best_temperature'] == 0.03 and w['window'] == [0.01, 0.03, 0.1]
  assert w['spread'] == pytest.approx(4.0)
  assert w['interval'][0] <= 4.0 <= w['interval'][1]
  assert w['interval'][1] < 5.0  # seeds within +-10 %
  edge = family.window_sensitivity({0.01: [1.0], 0.03: [2.0]})
  assert edge['edge'] and 'spread' not in edge
