"""experiments/ratio_intervals.py: paired log-ratio intervals by seed."""

import math

import numpy as np
import pytest

from drift_jax import stats
from experiments import ratio_intervals

METRIC = 'eval/energy_distance_ratio'


def _runs(values, status='ok'):
  return [{'seed': s, 'status': status, 'final': {METRIC: v}}
          for s, v in values.items()]


def test_ratio_interval_is_the_t_interval_of_paired_log_ratios():
  a = _runs({1: 2.0, 2: 4.0, 3: 3.0})
  b = _runs({3: 1.0, 1: 2.0, 2: 1.0})  # paired by seed, not by order
  iv = ratio_intervals.ratio_interval(a, b, METRIC)
  logs = stats.mean_interval(np.log([2.0 / 2.0, 4.0 / 1.0, 3.0 / 1.0]))
  assert iv.n == 3
  assert iv.mean == pytest.approx(math.exp(logs.mean))
  assert (iv.low, iv.high) == pytest.approx((math.exp(logs.low),
                                             math.exp(logs.high)))


def test_failed_runs_and_missing_seeds_are_left_out():
  a = _runs({1: 2.0, 2: 4.0, 3: 3.0})
  b = _runs({1: 1.0, 2: 2.0}) + _runs({3: 1.0}, status='failed')
  iv = ratio_intervals.ratio_interval(a, b, METRIC)
  assert iv.n == 2 and iv.mean == pytest.approx(2.0)
