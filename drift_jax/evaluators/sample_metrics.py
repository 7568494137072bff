"""Sample-quality metrics between generated and reference point sets.

Each metric can be compared with its *floor*: the same metric between two
independent data sets of the same size, which is what a perfect generator
would score with a finite sample.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from drift_jax.evaluators import transport
from drift_jax.fields import kernels as kernels_lib
from drift_jax.theory import validation

# Multiples of the median heuristic used by `mmd2` (a multi-scale kernel
# catches both coarse mode mismatch and fine structure).
MMD_BANDWIDTH_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)


def _check_pair(x, y, names=('x', 'y'), max_abs=validation.MAX_ABS_VALUE):
  """Two point sets of one dimension, as float arrays (`as_points`)."""
  x = validation.as_points(names[0], x, max_abs=max_abs)
  y = validation.as_points(names[1], y, max_abs=max_abs)
  validation.check_same_dim(names, (x, y))
  return x, y


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
  x, y = _check_pair(x, y)
  return _energy_distance(x, y)


@jax.jit
def _energy_distance(x, y):
  cross = jnp.mean(kernels_lib.pairwise_distances(x, y))
  within_x = jnp.mean(kernels_lib.pairwise_distances(x, x))
  within_y = jnp.mean(kernels_lib.pairwise_distances(y, y))
  return 2.0 * cross - within_x - within_y


def median_distance(y, max_points: int = 1000):
  """Median pairwise distance of (the first `max_points` of) y."""
  y = validation.as_points('y', y)[:max_points]
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
  x, y = _check_pair(x, y)
  if x.shape[0] < 2 or y.shape[0] < 2:
    raise ValueError(f'`x` and `y` need at least 2 samples each, got '
                     f'{x.shape} and {y.shape}.')
  if bandwidths is None:
    h = float(median_distance(y))
    bandwidths = tuple(f * h for f in MMD_BANDWIDTH_FACTORS)
  try:
    bandwidths = tuple(float(b) for b in bandwidths)
  except (TypeError, ValueError):
    raise ValueError(f'`bandwidths` must be a tuple of floats, got '
                     f'{bandwidths!r}.') from None
  if not bandwidths:
    raise ValueError('`bandwidths` must not be empty.')
  for b in bandwidths:
    validation.check_scale('bandwidths', b, bandwidths)
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


# ----------------------------------------------------------- Wasserstein-2


def _sorted_w2_squared(a, b):
  """Exact W2^2 between two 1-D empirical laws with uniform weights.

  The quantile functions are step functions with jumps at i/n and j/m; on
  the merged grid of jumps both are constant, so the integral
  int_0^1 (F_a^-1(t) - F_b^-1(t))^2 dt is an exact finite sum.
  """
  n, m = a.shape[0], b.shape[0]
  a, b = jnp.sort(a), jnp.sort(b)
  levels = jnp.sort(jnp.concatenate([jnp.arange(1, n + 1) / n,
                                     jnp.arange(1, m + 1) / m]))
  widths = jnp.diff(levels, prepend=0.0)
  middle = levels - widths / 2
  ia = jnp.clip(jnp.floor(middle * n).astype(jnp.int32), 0, n - 1)
  ib = jnp.clip(jnp.floor(middle * m).astype(jnp.int32), 0, m - 1)
  return jnp.sum(widths * (a[ia] - b[ib])**2)


def sliced_wasserstein2(x, y, key, num_projections: int = 256):
  """Sliced Wasserstein-2 distance (Rabin et al. 2011; Bonneel et al. 2015).

  SW2(x, y) = sqrt(E_theta W2^2(theta . x, theta . y)), theta uniform on the
  sphere, estimated with `num_projections` directions; each 1-D W2^2 is
  exact for the two empirical laws (any sizes N, M).

  Args:
    x: [N, D] samples; y: [M, D] samples.
    key: PRNG key for the directions (use the same key to compare runs).
    num_projections: number of random directions.

  Returns:
    Scalar SW2 (same units as x).
  """
  x, y = _check_pair(x, y)
  if (isinstance(num_projections, bool)
      or not isinstance(num_projections, int) or num_projections < 1):
    raise ValueError(f'`num_projections` must be a positive int, got '
                     f'{num_projections!r}.')
  return _sliced_w2(x, y, key, num_projections)


@functools.partial(jax.jit, static_argnums=3)
def _sliced_w2(x, y, key, num_projections):
  theta = jax.random.normal(key, (num_projections, x.shape[1]), x.dtype)
  theta = theta / jnp.linalg.norm(theta, axis=1, keepdims=True)
  per_direction = jax.vmap(_sorted_w2_squared)(theta @ x.T, theta @ y.T)
  return jnp.sqrt(jnp.mean(per_direction))


def wasserstein2(x, y):
  """Exact W2 between two empirical laws with the same number of points.

  W2^2 = min over permutations sigma of (1/n) sum_i |x_i - y_sigma(i)|^2,
  solved by the Hungarian algorithm (`transport.linear_assignment`, O(n^3):
  meant for n up to a few thousand).

  Args:
    x: [n, D] samples; y: [n, D] samples.

  Returns:
    Scalar W2.
  """
  x, y = _check_pair(x, y)
  if x.shape[0] != y.shape[0]:
    raise ValueError(f'`x` and `y` must have the same number of points for '
                     f'the exact W2 (an assignment), got {x.shape[0]} and '
                     f'{y.shape[0]}; subsample, or use sliced_wasserstein2.')
  cost = kernels_lib.pairwise_sq_distances(jnp.asarray(x), jnp.asarray(y))
  cost = jnp.maximum(cost, 0.0)  # clip float round-off of |a|^2+|b|^2-2ab
  sigma = transport.linear_assignment(cost)
  return jnp.sqrt(jnp.mean(cost[jnp.arange(x.shape[0]), sigma]))


# ------------------------------------------------------------------- floors


def with_floor(metric, samples, data, second_data):
  """(metric(samples, data), metric(second_data, data)).

  The floor is what a perfect generator scores with a finite sample: the
  same metric between two independent data sets of the same size. Pass
  `second_data` with as many points as `samples`.
  """
  if jnp.shape(second_data)[0] != jnp.shape(samples)[0]:
    raise ValueError(f'`second_data` must have as many points as `samples` '
                     f'({jnp.shape(samples)[0]}), got '
                     f'{jnp.shape(second_data)[0]}.')
  return metric(samples, data), metric(second_data, data)


# ------------------------------------------------------- Gaussian mixtures

# P(|N(0, 1)| <= 3): "within 3 std" in one dimension.
_THREE_SIGMA_MASS = math.erf(3 / math.sqrt(2))


def high_quality_radius(dim: int, mass: float = _THREE_SIGMA_MASS) -> float:
  """Mahalanobis radius r with P(|N(0, I_dim)| <= r) = mass.

  For dim = 1 and the default mass this is 3: "within 3 standard deviations
  of a mode" (the GAN mode-collapse literature's high-quality sample, e.g.
  Srivastava et al. 2017) extended to any dimension with the same
  probability for a true sample. |N(0, I)|^2 is chi-square with dim degrees
  of freedom, whose CDF is the regularised gamma P(dim/2, r^2/2).
  """
  if dim < 1 or not 0 < mass < 1:
    raise ValueError(f'Need dim >= 1 and mass in (0, 1), got {dim}, {mass}.')
  lo, hi = 0.0, 3.0 + 3.0 * math.sqrt(dim)
  for _ in range(100):  # bisection on a monotone CDF, to float precision
    mid = (lo + hi) / 2
    if float(jax.scipy.special.gammainc(dim / 2, mid**2 / 2)) < mass:
      lo = mid
    else:
      hi = mid
  return (lo + hi) / 2


def mixture_quality(samples, mixture, *, min_mass_fraction: float = 0.1):
  """Mode metrics of samples against a known Gaussian mixture.

  Each sample is assigned to the component with the largest posterior
  responsibility. It is *high quality* when its Mahalanobis distance to that
  component is within `high_quality_radius(D)` (3 std in 1-D, with the same
  coverage probability in D dimensions). A mode is *covered* when its
  high-quality samples are at least `min_mass_fraction` of what a perfect
  sampler would put there (weight_k * n * 0.9973).

  Args:
    samples: [N, D].
    mixture: `distributions.GaussianMixture` in the same dimension.
    min_mass_fraction: coverage threshold, in (0, 1].

  Returns:
    dict with 'modes_covered' (int), 'high_quality_fraction',
    'mode_mass' ([K] fraction of samples per mode, summing to 1),
    'mode_mass_error' (total variation between mode_mass and the weights),
    'log_likelihood' (mean log density of the samples under the mixture).
  """
  samples = validation.as_points('samples', samples)
  if samples.shape[1] != mixture.dim:
    raise ValueError(f'`samples` have {samples.shape[1]} features, the '
                     f'mixture has dimension {mixture.dim}.')
  if not 0 < min_mass_fraction <= 1:
    raise ValueError(f'`min_mass_fraction` must be in (0, 1], got '
                     f'{min_mass_fraction}.')
  n, k = samples.shape[0], mixture.n_components
  mahalanobis = mixture.mahalanobis(samples)  # [N, K]
  mode = jnp.argmax(mixture.responsibilities(samples), axis=1)
  own = jnp.take_along_axis(mahalanobis, mode[:, None], axis=1)[:, 0]
  good = own <= high_quality_radius(mixture.dim)
  mode_mass = jnp.zeros((k,)).at[mode].add(1.0) / n
  good_per_mode = jnp.zeros((k,)).at[mode].add(good.astype(jnp.float32))
  expected = mixture.weights * n * _THREE_SIGMA_MASS
  return {
      'modes_covered': int(jnp.sum(good_per_mode >= min_mass_fraction
                                   * expected)),
      'high_quality_fraction': float(jnp.mean(good)),
      'mode_mass': np.asarray(mode_mass),
      'mode_mass_error': float(0.5 * jnp.sum(jnp.abs(mode_mass
                                                     - mixture.weights))),
      'log_likelihood': float(jnp.mean(mixture.log_prob(samples))),
  }


# ------------------------------------------------------------------ fields


def field_agreement(estimate, reference):
  """How close an estimated vector field is to a reference field.

  Args:
    estimate, reference: [N, D] field values at the same N points.

  Returns:
    dict with 'relative_error' = |estimate - reference|_F / |reference|_F,
    'cosine' = <estimate, reference>_F / (|estimate|_F |reference|_F) (the
    whole field as one vector), and 'mean_pointwise_cosine' (the mean over
    points of the per-point cosine; points where either vector is zero count
    as 0).
  """
  estimate = validation.as_points('estimate', estimate)
  reference = validation.as_points('reference', reference)
  if jnp.shape(estimate) != jnp.shape(reference):
    raise ValueError(f'`estimate` and `reference` must have the same shape, '
                     f'got {jnp.shape(estimate)} and {jnp.shape(reference)}.')
  return {k: float(v) for k, v in _field_agreement(estimate,
                                                   reference).items()}


@jax.jit
def _field_agreement(estimate, reference):
  tiny = jnp.finfo(jnp.result_type(estimate, reference)).tiny
  ref_norm = jnp.linalg.norm(reference)
  est_norm = jnp.linalg.norm(estimate)
  norms = (jnp.linalg.norm(estimate, axis=1)
           * jnp.linalg.norm(reference, axis=1))
  pointwise = jnp.where(norms > tiny, jnp.sum(estimate * reference, 1)
                        / jnp.maximum(norms, tiny), 0.0)
  return {
      'relative_error': jnp.linalg.norm(estimate - reference)
                        / jnp.maximum(ref_norm, tiny),
      'cosine': jnp.sum(estimate * reference)
                / jnp.maximum(est_norm * ref_norm, tiny),
      'mean_pointwise_cosine': jnp.mean(pointwise),
  }


# ---------------------------------------------------- feature-space metrics


def _psd_sqrt(m):
  """Symmetric PSD square root via eigh (negative round-off clipped)."""
  evals, evecs = jnp.linalg.eigh((m + m.T) / 2)
  return (evecs * jnp.sqrt(jnp.maximum(evals, 0.0))) @ evecs.T


def frechet_distance(features_a, features_b):
  """Frechet distance between Gaussians fitted to two feature sets
  (Heusel et al. 2017; "FID" when the features are Inception's):
  |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2).

  The symmetric form of the cross term is used so that every square root is
  of a symmetric PSD matrix (eigh), equal to tr((S_a S_b)^1/2).

  Args:
    features_a: [N, F]; features_b: [M, F] (N, M >= 2).

  Returns:
    Scalar distance (same units as squared features).
  """
  # Covariances are squares of the features and the cross term a product
  # of three of them: features beyond 1e8 would overflow float32 there.
  features_a, features_b = _check_pair(
      features_a, features_b, ('features_a', 'features_b'), max_abs=1e8)
  if features_a.shape[0] < 2 or features_b.shape[0] < 2:
    raise ValueError('`features_a` and `features_b` need at least 2 samples '
                     f'each, got {features_a.shape} and {features_b.shape}.')
  return _frechet(jnp.asarray(features_a), jnp.asarray(features_b))


@jax.jit
def _frechet(a, b):
  mu_a, mu_b = jnp.mean(a, 0), jnp.mean(b, 0)
  cov_a, cov_b = jnp.cov(a, rowvar=False), jnp.cov(b, rowvar=False)
  root_a = _psd_sqrt(cov_a)
  cross = _psd_sqrt(root_a @ cov_b @ root_a)
  return (jnp.sum((mu_a - mu_b)**2) + jnp.trace(cov_a) + jnp.trace(cov_b)
          - 2.0 * jnp.trace(cross))


def precision_recall(real, fake, k: int = 3):
  """Improved precision and recall (Kynkaanniemi et al. 2019).

  Each set's manifold is the union of balls around its points with radius
  the distance to the k-th nearest neighbour within the set. Precision is
  the fraction of fake points inside the real manifold; recall the
  fraction of real points inside the fake manifold.

  Args:
    real: [N, F] features of data; fake: [M, F] features of samples.
    k: neighbourhood size (the paper uses 3).

  Returns:
    (precision, recall), floats in [0, 1].
  """
  real, fake = _check_pair(real, fake, ('real', 'fake'))
  if not 1 <= k < min(real.shape[0], fake.shape[0]):
    raise ValueError(f'`k` must be in [1, min(N, M) - 1], got {k}.')
  p, r = _precision_recall(jnp.asarray(real), jnp.asarray(fake), k)
  return float(p), float(r)


@functools.partial(jax.jit, static_argnums=2)
def _precision_recall(real, fake, k):
  def radii(x):
    d = kernels_lib.pairwise_distances(x, x)
    return jnp.sort(d, axis=1)[:, k]  # column 0 is the point itself

  def coverage(points, centres, r):
    d = kernels_lib.pairwise_distances(points, centres)
    return jnp.mean(jnp.any(d <= r[None, :], axis=1))

  return (coverage(fake, real, radii(real)),
          coverage(real, fake, radii(fake)))
