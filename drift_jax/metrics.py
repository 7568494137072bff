"""Sample-quality metrics between generated and reference point sets.

Each metric can be compared with its *floor*: the same metric between two
independent data sets of the same size, which is what a perfect generator
would score with a finite sample.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from drift_jax import kernels as kernels_lib
from drift_jax import validation

# Multiples of the median heuristic used by `mmd2` (a multi-scale kernel
# catches both coarse mode mismatch and fine structure).
MMD_BANDWIDTH_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)


def _check_pair(x, y):
  validation.check_points('x', x)
  validation.check_points('y', y)
  validation.check_same_dim(('x', 'y'), (x, y))


def energy_distance(x, y):
  """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely 2004).

  V-statistic (diagonals included): it is the squared distance between the
  empirical embeddings under the distance kernel, so it is >= 0 and its
  data-vs-data floor is positive, of order E|X - X'| / n; ratios to the floor
  are therefore well defined.

  Args:
    x: [N, D] samples; y: [M, D] samples.

  Returns:
    Scalar energy distance.
  """
  _check_pair(x, y)
  return _energy_distance(x, y)


@jax.jit
def _energy_distance(x, y):
  cross = jnp.mean(kernels_lib.pairwise_distances(x, y))
  within_x = jnp.mean(kernels_lib.pairwise_distances(x, x))
  within_y = jnp.mean(kernels_lib.pairwise_distances(y, y))
  return 2.0 * cross - within_x - within_y


def median_distance(y, max_points: int = 1000):
  """Median pairwise distance of (the first `max_points` of) y."""
  validation.check_points('y', y)
  y = y[:max_points]
  d = kernels_lib.pairwise_distances(y, y)
  off_diagonal = d[~jnp.eye(y.shape[0], dtype=bool)]
  return jnp.median(off_diagonal)


def mmd2(x, y, bandwidths=None):
  """Unbiased MMD^2 with a sum of Gaussian kernels (Gretton et al. 2012).

  k(a, b) = sum_h exp(-|a - b|^2 / (2 h^2)); diagonal terms are dropped
  from the within-set means, so E[mmd2] = 0 when x and y share a law (the
  estimate can then be slightly negative).

  Args:
    x: [N, D] samples; y: [M, D] reference samples (N, M >= 2).
    bandwidths: tuple of h; default `MMD_BANDWIDTH_FACTORS` times the median
      pairwise distance of y. Pass the same tuple when comparing runs.

  Returns:
    Scalar MMD^2.
  """
  _check_pair(x, y)
  if x.shape[0] < 2 or y.shape[0] < 2:
    raise ValueError(f'`x` and `y` need at least 2 samples each, got '
                     f'{x.shape} and {y.shape}.')
  if bandwidths is None:
    h = float(median_distance(y))
    bandwidths = tuple(f * h for f in MMD_BANDWIDTH_FACTORS)
  bandwidths = tuple(float(b) for b in bandwidths)
  if not bandwidths or min(bandwidths) <= 0:
    raise ValueError(f'`bandwidths` must be positive, got {bandwidths}.')
  return _mmd2(x, y, bandwidths)


@functools.partial(jax.jit, static_argnums=2)
def _mmd2(x, y, bandwidths):
  def kernel_mean(a, b, drop_diagonal):
    sq = kernels_lib.pairwise_sq_distances(a, b)
    k = sum(jnp.exp(-sq / (2.0 * h**2)) for h in bandwidths)
    if not drop_diagonal:
      return jnp.mean(k)
    n = a.shape[0]
    return (jnp.sum(k) - jnp.trace(k)) / (n * (n - 1))
  return (kernel_mean(x, x, True) + kernel_mean(y, y, True)
          - 2.0 * kernel_mean(x, y, False))
