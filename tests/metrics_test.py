"""Evaluation metrics against brute-force NumPy/SciPy references."""

import jax
import numpy as np
from scipy.spatial.distance import cdist

from drift_jax import metrics


def _sets(n=300, m=200, shift=0.0):
  rng = np.random.default_rng(0)
  return (rng.normal(size=(n, 3)).astype(np.float32) + shift,
          rng.normal(size=(m, 3)).astype(np.float32))


def test_energy_distance_matches_scipy_v_statistic():
  x, y = _sets(shift=0.5)
  want = (2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())
  np.testing.assert_allclose(metrics.energy_distance(x, y), want, rtol=1e-4)


def test_energy_distance_floor_has_its_expected_value():
  """Same law: E[V-statistic] = (1/n + 1/m) E|X - X'| > 0; for 2-D standard
  normals E|X - X'| = sqrt(pi). Averaged over 40 independent pairs, the
  mean must match within 4 standard errors (estimated from the pairs)."""
  n, reps = 400, 40
  keys = jax.random.split(jax.random.key(0), reps)
  floors = np.array([
      float(metrics.energy_distance(jax.random.normal(k, (n, 2)),
                                    jax.random.normal(
                                        jax.random.fold_in(k, 1), (n, 2))))
      for k in keys])
  assert np.all(floors > 0)
  expected = 2 * np.sqrt(np.pi) / n
  stderr = floors.std(ddof=1) / np.sqrt(reps)
  assert abs(floors.mean() - expected) < 4 * stderr
  assert stderr < 0.2 * expected  # the check has power


def test_mmd2_is_unbiased_gaussian_sum():
  x, y = _sets(shift=0.3)
  bandwidths = (0.5, 1.0, 2.0)

  def k(a, b):
    d2 = cdist(a, b, 'sqeuclidean')
    return sum(np.exp(-d2 / (2 * h**2)) for h in bandwidths)

  n, m = len(x), len(y)
  kxx, kyy = k(x, x), k(y, y)
  want = ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
          + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * k(x, y).mean())
  np.testing.assert_allclose(metrics.mmd2(x, y, bandwidths), want,
                             rtol=1e-4, atol=1e-6)
  # Same law: |mmd2| is at the noise level, far below the shifted value.
  same = metrics.mmd2(x[:150], x[150:], bandwidths)
  assert abs(float(same)) < 0.2 * want
