"""The benchmarks' baseline is the authors' algorithm (checked against the
independent float64 references), so speed-ups are measured against it."""

import jax.numpy as jnp
import numpy as np

from experiments.benchmarks import baseline
from tests import references


def _rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_baseline_is_algorithm2_on_raw_distances(x64):
  rng = np.random.default_rng(0)
  x, pos = rng.normal(size=(40, 3)), rng.normal(size=(50, 3)) + 0.5
  v, scale = baseline.compute_v(jnp.asarray(x), jnp.asarray(pos),
                                jnp.asarray(x), (0.05, 0.3), normalize=False)
  expected = sum(references.algorithm2(x, pos, x, t) for t in (0.05, 0.3))
  assert scale == 1.0
  # cdist's 1e-8 floor under the square root: ~1e-10 relative.
  assert _rel_err(v, expected) <= 1e-8


def test_baseline_is_the_released_recipe_when_normalised(x64):
  rng = np.random.default_rng(1)
  n, dim = 48, 6
  x, pos = rng.normal(size=(n, dim)), rng.normal(size=(64, dim)) * 0.8 + 0.3
  temps = (0.02, 0.05, 0.2)
  v, scale = baseline.compute_v(jnp.asarray(x), jnp.asarray(pos),
                                jnp.asarray(x), temps, normalize=True)
  ref, s = references.released_drift(x, pos, np.ones(64), np.ones(n), temps,
                                     0.0)
  # cdist floors squared distances at 1e-8, so the n self pairs count as
  # 1e-4 instead of 0 in the mean over n * 112 pairs: ~1e-6 / S relative.
  assert abs(float(scale) - s) <= 1e-6 * s
  assert _rel_err(v, ref) <= 1e-5
