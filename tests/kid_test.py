"""KID: the unbiased polynomial-kernel MMD against a direct double loop,
its unbiasedness and its standard error."""

import numpy as np
import pytest

from drift_jax.evaluators import kid


def _direct_mmd2(x, y):
  """Binkowski et al. 2018 Eq. 4 term by term, in plain Python loops."""
  d = x.shape[1]

  def k(a, b):
    return (float(np.dot(a, b)) / d + 1.0) ** 3

  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
  return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


def test_mmd2_matches_the_formula_term_by_term():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1.0, size=(9, 5))
  np.testing.assert_allclose(kid.mmd2_unbiased(x, y), _direct_mmd2(x, y),
                             rtol=1e-10)


def test_kid_is_unbiased_for_equal_distributions_and_sees_a_shift():
  rng = np.random.default_rng(1)
  same = [kid.kid(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)))
          for _ in range(20)]
  values = np.array([v for v, _ in same])
  # 20 independent estimates of 0: their mean within 3 of its s.e.
  assert abs(values.mean()) < 3 * values.std(ddof=1) / np.sqrt(20)
  value, se = kid.kid(rng.normal(size=(200, 8)),
                      rng.normal(0.5, 1.0, size=(200, 8)))
  assert se > 0 and value > 5 * se


def test_standard_error_tracks_the_spread_of_repeats():
  rng = np.random.default_rng(2)
  runs = [kid.kid(rng.normal(size=(300, 4)), rng.normal(0.3, 1, (300, 4)))
          for _ in range(30)]
  spread = np.std([v for v, _ in runs], ddof=1)
  mean_se = np.mean([se for _, se in runs])
  # The blocks' s.e. estimates the repeat-to-repeat spread (within 2x:
  # each s.e. rests on 10 blocks).
  assert 0.5 < mean_se / spread < 2.0


def test_too_few_rows_are_refused():
  with pytest.raises(ValueError, match='KID needs'):
    kid.mmd2_unbiased(np.ones((1, 3)), np.ones((4, 3)))
  value, se = kid.kid(np.random.default_rng(0).normal(size=(3, 2)),
                      np.random.default_rng(1).normal(size=(3, 2)))
  assert np.isfinite(value) and np.isnan(se)  # one block: no s.e.
