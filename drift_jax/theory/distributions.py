"""Gaussian mixtures with exact smoothed scores, and the 2-D toy targets.

Smoothing a mixture with N(0, sigma^2 I) adds sigma^2 I to every covariance,
so scores and posterior means (denoisers) of the smoothed mixture are closed
form in any dimension (the exact reference of Lai et al. 2026, arXiv
2603.07514, for their Gaussian-kernel identity). Every operation goes
through the eigendecomposition Sigma_k = U_k diag(e_k) U_k^T, so that a
per-sample noise level sigma_n costs O(K D^2) per sample instead of a
Cholesky each.
"""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from drift_jax.theory import validation


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianMixture:
  """sum_k w_k N(mu_k, Sigma_k) in R^D.

  Attributes:
    means: [K, D].
    covs: [K, D, D] symmetric positive definite.
    weights: [K] mixture weights (normalised to sum to 1 on construction).
  """
  means: jax.Array
  covs: jax.Array
  weights: jax.Array

  def __post_init__(self):
    means = jnp.asarray(self.means)
    covs = jnp.asarray(self.covs, means.dtype)
    weights = jnp.asarray(self.weights, means.dtype)
    if means.ndim != 2:
      raise ValueError(f'`means` must be [K, D], got {means.shape}.')
    k, d = means.shape
    if covs.shape != (k, d, d):
      raise ValueError(f'`covs` must be [K, D, D] = {(k, d, d)}, got '
                       f'{covs.shape}.')
    if weights.shape != (k,):
      raise ValueError(f'`weights` must be [K] = ({k},), got {weights.shape}.')
    w = np.asarray(weights)
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
      raise ValueError('`weights` must be finite, non-negative, not all zero.')
    evals, evecs = jnp.linalg.eigh(covs)
    if not bool(jnp.all(evals > 0)):
      raise ValueError('`covs` must be positive definite.')
    object.__setattr__(self, 'means', means)
    object.__setattr__(self, 'covs', covs)
    object.__setattr__(self, 'weights', weights / jnp.sum(weights))
    object.__setattr__(self, '_evals', evals)  # [K, D]
    object.__setattr__(self, '_evecs', evecs)  # [K, D, D], columns

  @classmethod
  def isotropic(cls, means, std, weights=None):
    """Mixture of N(mu_k, std_k^2 I); `std` scalar or [K]."""
    means = jnp.asarray(means)
    k, d = means.shape
    std = jnp.broadcast_to(jnp.asarray(std, means.dtype), (k,))
    covs = (std**2)[:, None, None] * jnp.eye(d, dtype=means.dtype)
    if weights is None:
      weights = jnp.ones((k,), means.dtype)
    return cls(means, covs, weights)

  @property
  def dim(self) -> int:
    return self.means.shape[1]

  @property
  def n_components(self) -> int:
    return self.means.shape[0]

  def _check_x(self, x):
    validation.check_points('x', x)
    if x.shape[-1] != self.dim:
      raise ValueError(f'`x` has {x.shape[-1]} features, the mixture has '
                       f'{self.dim}; x shape {x.shape}.')

  def _extra_variance(self, sigma, n, dtype):
    if sigma is None:
      return jnp.zeros((n,), dtype)
    return validation.per_sample_sigma(sigma, n, dtype)**2

  def _components(self, x, extra_var):
    """Per-component log densities [N, K] and eigenbasis terms.

    Returns:
      log N(x; mu_k, Sigma_k + v_n I) [N, K], the projected residual
      U_k^T (x - mu_k) [N, K, D] and the variances e_k + v_n [N, K, D].
    """
    diff = x[:, None, :] - self.means[None]  # [N, K, D]
    proj = jnp.einsum('nkd,kde->nke', diff, self._evecs)
    var = self._evals[None] + extra_var[:, None, None]  # [N, K, D]
    maha = jnp.sum(proj**2 / var, axis=-1)
    logdet = jnp.sum(jnp.log(var), axis=-1)
    log_pdf = -0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))
    return log_pdf, proj, var

  def _responsibilities(self, log_pdf):
    return jax.nn.softmax(log_pdf + jnp.log(self.weights), axis=-1)  # [N, K]

  def mahalanobis(self, x):
    """Mahalanobis distances [N, K] of x to every component."""
    self._check_x(x)
    diff = x[:, None, :] - self.means[None]
    proj = jnp.einsum('nkd,kde->nke', diff, self._evecs)
    return jnp.sqrt(jnp.sum(proj**2 / self._evals[None], axis=-1))

  def responsibilities(self, x):
    """Posterior component probabilities p(k | x) [N, K]."""
    self._check_x(x)
    log_pdf, _, _ = self._components(x, jnp.zeros((x.shape[0],), x.dtype))
    return self._responsibilities(log_pdf)

  def log_prob(self, x, sigma=None):
    """log density [N] (of the sigma-smoothed mixture when sigma is given)."""
    self._check_x(x)
    log_pdf, _, _ = self._components(
        x, self._extra_variance(sigma, x.shape[0], x.dtype))
    return jax.nn.logsumexp(log_pdf + jnp.log(self.weights), axis=-1)

  def score(self, x, sigma=None):
    """grad_x log p(x) [N, D] (of the smoothed mixture when sigma is given).

    Closed form: -sum_k r_k(x) (Sigma_k + sigma^2 I)^-1 (x - mu_k).
    """
    self._check_x(x)
    log_pdf, proj, var = self._components(
        x, self._extra_variance(sigma, x.shape[0], x.dtype))
    resp = self._responsibilities(log_pdf)
    prec_diff = jnp.einsum('nke,kde->nkd', proj / var, self._evecs)
    return -jnp.einsum('nk,nkd->nd', resp, prec_diff)

  def smooth(self, sigma) -> GaussianMixture:
    """The mixture convolved with N(0, sigma^2 I): covariances + sigma^2 I."""
    validation.check_positive_scalar('sigma', sigma)
    eye = jnp.eye(self.dim, dtype=self.means.dtype)
    return GaussianMixture(self.means, self.covs + sigma**2 * eye,
                           self.weights)

  def denoiser(self, x, sigma):
    """Exact posterior mean E[y | y + sigma eps = x], y ~ this mixture.

    Posterior per component: mu_k + Sigma_k (Sigma_k + s^2 I)^-1 (x - mu_k),
    mixed with the responsibilities of the smoothed mixture. This is the
    oracle teacher for DMD. `sigma` is a scalar or [N].
    """
    self._check_x(x)
    var_extra = self._extra_variance(sigma, x.shape[0], x.dtype)
    log_pdf, proj, var = self._components(x, var_extra)
    resp = self._responsibilities(log_pdf)
    shrink = jnp.einsum('nke,kde->nkd', proj * self._evals[None] / var,
                        self._evecs)
    return jnp.einsum('nk,nkd->nd', resp, self.means[None] + shrink)

  def sample(self, key, n: int):
    """n samples [n, D]."""
    k_comp, k_noise = jax.random.split(key)
    comp = jax.random.choice(k_comp, self.n_components, (n,), p=self.weights)
    eps = jax.random.normal(k_noise, (n, self.dim), self.means.dtype)
    root = self._evecs * jnp.sqrt(self._evals)[:, None, :]  # U sqrt(e)
    return self.means[comp] + jnp.einsum('nde,ne->nd', root[comp], eps)


# ---------------------------------------------------------------- 2-D toys


def eight_gaussians(radius=1.0, std=0.08) -> GaussianMixture:
  """Ring of 8 equal Gaussians of radius `radius`."""
  angles = jnp.arange(8) * (2 * math.pi / 8)
  means = radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)
  return GaussianMixture.isotropic(means, std)


def twenty_five_gaussians(spacing=0.5, std=0.05) -> GaussianMixture:
  """5 x 5 grid of equal Gaussians centred on the origin."""
  ticks = (jnp.arange(5) - 2.0) * spacing
  gx, gy = jnp.meshgrid(ticks, ticks, indexing='ij')
  return GaussianMixture.isotropic(jnp.stack([gx.ravel(), gy.ravel()], -1),
                                   std)


def two_mode(separation=2.0, std=0.2) -> GaussianMixture:
  """Two equal Gaussians at (+-separation/2, 0): Deng et al. Fig. 3."""
  means = jnp.array([[-separation / 2, 0.0], [separation / 2, 0.0]])
  return GaussianMixture.isotropic(means, std)


def sample_checkerboard(key, n, noise=0.05):
  """Deng et al. demo notebook's checkerboard on [-1, 1]^2 (8 cells)."""
  k_b, k_i, k_j, k_u, k_n = jax.random.split(key, 5)
  b = jax.random.randint(k_b, (n,), 0, 2)
  i = 2 * jax.random.randint(k_i, (n,), 0, 2) + b
  j = 2 * jax.random.randint(k_j, (n,), 0, 2) + b
  u = jax.random.uniform(k_u, (n, 2))
  pts = (jnp.stack([i, j], axis=-1) + u - 2.0) / 2.0
  return pts + noise * jax.random.normal(k_n, (n, 2))


def sample_swiss_roll(key, n, noise=0.03):
  """Deng et al. demo notebook's swiss roll, t in [pi/2, 4.5 pi].

  The notebook divides by the batch's max |coordinate|; we divide by its
  population value 4.5 pi (attained at t = 4.5 pi), so the distribution does
  not depend on the batch size.
  """
  k_t, k_n = jax.random.split(key)
  t = math.pi / 2 + 4 * math.pi * jax.random.uniform(k_t, (n,))
  pts = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=-1) / (4.5 * math.pi)
  return pts + noise * jax.random.normal(k_n, (n, 2))


def sample_two_moons(key, n, noise=0.05):
  """Two interleaved half circles, scaled to about [-1, 1]^2."""
  k_side, k_t, k_n = jax.random.split(key, 3)
  upper = jax.random.bernoulli(k_side, 0.5, (n,))
  t = math.pi * jax.random.uniform(k_t, (n,))
  up = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=-1)
  down = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=-1)
  pts = jnp.where(upper[:, None], up, down) - jnp.array([0.5, 0.25])
  return pts / 1.5 + noise * jax.random.normal(k_n, (n, 2))


def sample_rings(key, n, radii=(0.25, 0.5, 0.75, 1.0), noise=0.02):
  """Concentric circles, equal mass per ring."""
  k_r, k_t, k_n = jax.random.split(key, 3)
  r = jnp.asarray(radii)[jax.random.randint(k_r, (n,), 0, len(radii))]
  t = 2 * math.pi * jax.random.uniform(k_t, (n,))
  pts = r[:, None] * jnp.stack([jnp.cos(t), jnp.sin(t)], axis=-1)
  return pts + noise * jax.random.normal(k_n, (n, 2))


TOY_MIXTURES = {
    'eight_gaussians': eight_gaussians,
    'twenty_five_gaussians': twenty_five_gaussians,
    'two_mode': two_mode,
}

TOY_SAMPLERS = {
    'checkerboard': sample_checkerboard,
    'swiss_roll': sample_swiss_roll,
    'two_moons': sample_two_moons,
    'rings': sample_rings,
}


def toy_sampler(name: str):
  """A sampler (key, n) -> [n, 2] for any 2-D toy, by config name."""
  validation.check_known_name('dataset', name,
                              tuple(TOY_SAMPLERS) + tuple(TOY_MIXTURES))
  if name in TOY_MIXTURES:
    return TOY_MIXTURES[name]().sample
  return TOY_SAMPLERS[name]


_MAGIC = {'.npy': b'\x93NUMPY', '.npz': b'PK'}


def _read_array(path, key):
  """The array in a .npy / .npz, with one-line errors for an empty file,
  a file of another format under the name, or pickled objects."""
  suffix = os.path.splitext(path)[1]
  with open(path, 'rb') as f:
    head = f.read(6)
  if not head:
    raise ValueError(f'Point cloud file {path!r} is empty (0 bytes).')
  if not head.startswith(_MAGIC[suffix]):
    raise ValueError(f'Point cloud file {path!r} is not a {suffix} file '
                     f'(it starts with {head!r}); save it with '
                     f'numpy.{"save" if suffix == ".npy" else "savez"}.')
  try:
    if suffix == '.npy':
      return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as archive:
      names = list(archive.keys())
      if key is None and len(names) != 1:
        raise ValueError(f'{path!r} holds arrays {names}; pass `key` to '
                         'choose one.')
      name = key if key is not None else names[0]
      if name not in names:
        raise ValueError(f'`key` {name!r} not in {path!r}; it holds {names}.')
      return archive[name]
  except ValueError as error:
    if 'pickle' in str(error):
      raise ValueError(f'Point cloud file {path!r} holds Python objects '
                       '(pickled data), which are not loaded; save a numeric '
                       '[N, D] array instead.') from None
    raise
  except (EOFError, OSError) as error:
    raise ValueError(f'Point cloud file {path!r} is unreadable ({error}); '
                     'is it truncated?') from None


def load_point_cloud(path: str, key: str | None = None) -> np.ndarray:
  """Loads a user's point cloud [N, D] (float32) from `.npy` or `.npz`.

  An `.npz` with one array uses it; otherwise name it with `key`.
  Raises FileNotFoundError for a missing path and ValueError for anything
  that is not a finite [N, D] array.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Point cloud file {path!r} not found; expected a .npy holding an '
        '[N, D] array, or a .npz with one such array.')
  if not path.endswith(('.npy', '.npz')):
    raise ValueError(f'Point cloud `path` must end in .npy or .npz, got '
                     f'{path!r}.')
  data = _read_array(path, key)
  if not (np.issubdtype(data.dtype, np.number)
          or np.issubdtype(data.dtype, np.bool_)):
    raise ValueError(f'Point cloud in {path!r} has dtype {data.dtype}; '
                     'expected a numeric [N, D] array.')
  if data.ndim != 2 or data.shape[0] < 2:
    raise ValueError(f'Point cloud in {path!r} must be [N, D] with N >= 2, '
                     f'got shape {data.shape}.')
  data = data.astype(np.float32)
  if not np.all(np.isfinite(data)):
    raise ValueError(f'Point cloud in {path!r} contains NaN or Inf.')
  return data
