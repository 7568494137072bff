"""Intervals over seeds and paired comparisons (`stats`)."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from drift_jax import stats


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


# -- Log-scale comparisons with their power (issue 27) ----------------------


def _lognormal_pairs(seed, n=7, gap=0.3):
  rng = np.random.default_rng(seed)
  shared = rng.normal(size=n)
  a = np.exp(1.0 + gap + shared + 0.4 * rng.normal(size=n))
  b = np.exp(1.0 + shared + 0.4 * rng.normal(size=n))
  return a, b


@pytest.mark.parametrize('test', ['paired', 'welch'])
def test_log_tests_equal_scipy(test):
  a, b = _lognormal_pairs(0)
  got = stats.log_ratio_comparison(a, b, test=test)
  ref = (scipy_stats.ttest_rel(np.log(a), np.log(b)) if test == 'paired'
         else scipy_stats.ttest_ind(np.log(a), np.log(b), equal_var=False))
  ci = ref.confidence_interval(0.95)
  assert abs(got.p_value - ref.pvalue) < 1e-10
  assert abs(math.log(got.low) - ci.low) < 1e-10
  assert abs(math.log(got.high) - ci.high) < 1e-10
  assert abs(math.log(got.ratio) - (np.log(a).mean() - np.log(b).mean())
             ) < 1e-10
  assert got.test == test and got.n == 7


def test_holm_on_a_known_example():
  # Holm (1979) step-down: sorted p 0.005, 0.01, 0.03, 0.04 times 4, 3, 2,
  # 1 -> 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06.
  adjusted, rejected = stats.holm([0.01, 0.04, 0.03, 0.005])
  np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
  assert rejected.tolist() == [True, False, False, True]
  # Untested claims (NaN) are not in the family and never rejected.
  adjusted, rejected = stats.holm([0.02, math.nan])
  assert adjusted[0] == 0.02 and rejected.tolist() == [True, False]
  # Each p alone at 0.05 would be rejected, but not the family of three.
  assert not stats.holm([0.03, 0.04, 0.045])[1].any()


def test_detectable_gap_has_its_power_in_simulation():
  """10,000 simulated designs with the true gap set to the detectable one
  reject at 80 % (within 2 %: the simulation's s.e. is 0.4 %)."""
  rng = np.random.default_rng(0)
  # Paired, n = 3 (df 2): the leaderboard's design.
  sd, n = 0.7, 3
  gap = stats.detectable_log_gap(sd / math.sqrt(n), n - 1)
  d = rng.normal(gap, sd, size=(10_000, n))
  rate = np.mean(scipy_stats.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05)
  assert abs(rate - 0.8) < 0.016, rate
  # Welch, 10 seeds each, unequal spreads.
  sa, sb, n = 0.5, 1.0, 10
  df = stats.welch_df(sa ** 2, n, sb ** 2, n)
  gap = stats.detectable_log_gap(math.sqrt((sa ** 2 + sb ** 2) / n), df)
  a = rng.normal(gap, sa, size=(10_000, n))
  b = rng.normal(0.0, sb, size=(10_000, n))
  p = scipy_stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue
  assert abs(np.mean(p < 0.05) - 0.8) < 0.016, np.mean(p < 0.05)


def test_choose_test_pairs_only_when_pairing_narrows_intervals():
  # Seeds that move both methods together: pairing wins.
  correlated = [tuple(np.log(x) for x in _lognormal_pairs(s, n=3))
                for s in range(5)]
  assert stats.choose_test(correlated) == 'paired'
  # Independent seeds: pairing only loses degrees of freedom.
  rng = np.random.default_rng(3)
  independent = [(rng.normal(size=3), rng.normal(size=3)) for _ in range(9)]
  assert stats.choose_test(independent) == 'welch'


def test_log_ratio_verdicts_and_what_they_allow():
  a, b = _lognormal_pairs(1, n=10, gap=1.0)
  worse = stats.log_ratio_comparison(a, b)
  assert worse.verdict == 'worse' and worse.low > 1
  assert stats.log_ratio_comparison(a, b, lower_is_better=False).verdict == (
      'better')
  assert stats.log_ratio_comparison(b, a).verdict == 'better'
  same_a, same_b = _lognormal_pairs(2, n=3, gap=0.0)
  tie = stats.log_ratio_comparison(same_a, same_b)
  assert tie.verdict == 'not shown to differ'
  assert tie.low < 1 < tie.high and tie.allows == max(tie.high, 1 / tie.low)
  assert tie.describe() == (f'not shown to differ (allows up to '
                            f'{tie.allows:.3g}×)')
  assert tie.detectable > 1
  # A failure decides: the method that failed a seed the other finished.
  failed = a.copy()
  failed[0] = np.nan
  assert stats.log_ratio_comparison(b, failed).verdict == 'better'
  # Holm over a family can take a claim back.
  close = stats.log_ratio_comparison(*_lognormal_pairs(4, n=4, gap=0.5))
  assert stats.holm_verdicts([close] * 20)[0] == 'not shown to differ'


def test_log_comparison_bad_arguments_name_themselves():
  with pytest.raises(ValueError, match='`a` must be positive'):
    stats.log_ratio_comparison([1.0, -1.0], [1.0, 2.0])
  with pytest.raises(ValueError, match='`test`'):
    stats.log_ratio_comparison([1.0, 2.0], [1.0, 2.0], test='wilcoxon')
  with pytest.raises(ValueError, match='equal shapes'):
    stats.log_ratio_comparison([1.0, 2.0], [1.0, 2.0, 3.0])


def test_welch_keeps_every_seed_of_the_method_with_more():
  """Ten test seeds against three: Welch's t on all of them (scipy), and
  a failure decides only when the other method has none."""
  rng = np.random.default_rng(5)
  a, b = np.exp(rng.normal(0.5, 0.3, 10)), np.exp(rng.normal(0.0, 0.3, 3))
  got = stats.log_ratio_comparison(a, b, test='welch')
  ref = scipy_stats.ttest_ind(np.log(a), np.log(b), equal_var=False)
  assert abs(got.p_value - ref.pvalue) < 1e-10 and got.n == 3
  failed = a.copy()
  failed[7] = np.nan
  assert stats.log_ratio_comparison(failed, b, test='welch').verdict == (
      'worse')
  both = b.copy()
  both[0] = np.nan
  lost = stats.log_ratio_comparison(failed, both, test='welch')
  ref = scipy_stats.ttest_ind(np.log(np.delete(a, 7)), np.log(b[1:]),
                              equal_var=False)
  assert abs(lost.p_value - ref.pvalue) < 1e-10
