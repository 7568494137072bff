"""Intervals over seeds and paired comparisons (`stats`)."""

import math

import numpy as np
import pytest

from drift_jax.theory import stats


def test_mean_interval_is_the_student_t_interval():
  # [1, 2, 3, 4]: mean 2.5, s = sqrt(5/3), t_{0.975, 3} = 3.182446305...
  got = stats.mean_interval([1.0, 2.0, 3.0, 4.0])
  half = 3.182446305284263 * math.sqrt(5 / 3) / 2
  assert (got.mean, got.n, got.failed) == (2.5, 4, 0)
  assert got.low == pytest.approx(2.5 - half, rel=1e-12)
  assert got.high == pytest.approx(2.5 + half, rel=1e-12)


def test_failed_runs_are_counted_not_dropped():
  got = stats.mean_interval([1.0, float('nan'), 3.0, float('inf')])
  assert (got.mean, got.n, got.failed) == (2.0, 2, 2)
  assert '2 failed' in str(got)
  none = stats.mean_interval([float('nan')] * 3)
  assert none.n == 0 and str(none) == 'failed (3)'
  one = stats.mean_interval([5.0])
  assert one.mean == 5.0 and math.isnan(one.low)


def test_interval_covers_the_mean_at_its_rate():
  """95 % intervals over 5 normal draws cover the true mean ~95 % of the
  time (2,000 repetitions: a 3-sigma band is 0.935-0.965)."""
  rng = np.random.default_rng(0)
  hits = [(i.low <= 1.0 <= i.high) for i in
          (stats.mean_interval(rng.normal(1.0, 2.0, 5)) for _ in range(2000))]
  assert 0.935 < np.mean(hits) < 0.965


def test_paired_comparison_verdicts():
  rng = np.random.default_rng(1)
  base = rng.normal(size=6)
  # a is lower (better) on every seed by 1 +- 0.1: separated.
  a = base - 1.0 + 0.1 * rng.normal(size=6)
  assert stats.paired_comparison(a, base).verdict == 'a better'
  assert stats.paired_comparison(a, base, lower_is_better=False).verdict == (
      'b better')
  # Noise around zero: not separated.
  noisy = base + 0.5 * rng.normal(size=6)
  assert stats.paired_comparison(noisy, base).verdict == 'not separated'
  # A method with a failed seed loses unless the other failed too.
  failed = a.copy()
  failed[2] = np.nan
  assert stats.paired_comparison(failed, base).verdict == 'b better'
  both = base.copy()
  both[4] = np.nan
  assert stats.paired_comparison(failed, both).verdict == 'not separated'


def test_bad_arguments_name_themselves():
  with pytest.raises(ValueError, match='confidence'):
    stats.mean_interval([1.0, 2.0], confidence=1.5)
  with pytest.raises(ValueError, match='equal 1-D shapes'):
    stats.paired_comparison([1.0, 2.0], [1.0])


def test_identical_values_have_a_zero_width_interval():
  """Every seed covering all 8 modes is certain, not undefined."""
  got = stats.mean_interval([8.0, 8.0, 8.0])
  assert (got.mean, got.low, got.high, got.n) == (8.0, 8.0, 8.0, 3)
