"""Radial kernels in log space and numerically safe pairwise distances.

Every kernel is a function of the distance r = ||x - y|| and one scale
parameter, always called `temperature` (tau):

| name       | k(x, y)                  | notes                             |
|------------|--------------------------|-----------------------------------|
| `laplace`  | exp(-r / tau)            | Deng et al. 2026 Eq. 12 (default) |
| `gaussian` | exp(-r^2 / (2 tau^2))    | tau = std; Tweedie factor tau^2   |
| `imq`      | (1 + r^2 / tau^2)^(-1/2) | inverse multiquadric, heavy tail  |
| `cauchy`   | 1 / (1 + r^2 / tau^2)    | heavy tail                        |

Kernels are evaluated as log k from *squared* distances, so softmax-type
normalisations can use `logsumexp` and nothing underflows at small tau.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp
from jax import lax

from drift_jax.theory import validation

DIRECT_MAX_DIM = 8  # direct differences up to this dimension

# Matrix-product precision of every distance and kernel-weighted average.
# 'highest' is full float32 on every backend; the defaults of GPUs (TF32)
# and TPUs (bfloat16 passes) cost the drifting field 4e-3 to 9e-2 relative
# error on an H100 (BENCHMARKS.md). 'default' trades that for speed.
PRECISIONS = {'highest': lax.Precision.HIGHEST,
              'default': lax.Precision.DEFAULT}


def matmul(a, b, precision: str = 'highest'):
  """a @ b at `precision` (a key of `PRECISIONS`), whatever the backend's
  default matmul precision."""
  return jnp.matmul(a, b, precision=PRECISIONS[precision])


def pairwise_sq_distances(x, y, precision: str = 'highest'):
  """Squared Euclidean distances ||x_i - y_j||^2, clipped at 0.

  For D <= `DIRECT_MAX_DIM` it sums (x_id - y_jd)^2 over d directly: exact to
  float rounding, and as fast as a matmul at such D. Above, it uses
  ||a||^2 + ||b||^2 - 2 a.b (one matmul, O(N M) memory) after centring both
  sets on the mean of `y`: the distances are translation invariant, and
  centring removes the cancellation that the expansion suffers far from the
  origin. The expansion's absolute error (~1e-7 |x|^2 in float32) is what
  remains at small distances, where low temperatures amplify it.

  Args:
    x: [N, D] points.
    y: [M, D] points.
    precision: of the matmul (`PRECISIONS`; D > DIRECT_MAX_DIM only).

  Returns:
    [N, M] squared distances (>= 0).
  """
  x, y = validation.as_points('x', x), validation.as_points('y', y)
  validation.check_same_dim(('x', 'y'), (x, y))
  if x.shape[-1] <= DIRECT_MAX_DIM:
    return sum((x[:, None, d] - y[None, :, d])**2 for d in range(x.shape[-1]))
  center = jnp.mean(y, axis=0)
  x = x - center
  y = y - center
  x2 = jnp.sum(x * x, axis=-1)[:, None]  # [N, 1]
  y2 = jnp.sum(y * y, axis=-1)[None, :]  # [1, M]
  sq = x2 + y2 - 2.0 * matmul(x, y.T, precision)
  return jnp.maximum(sq, 0.0)


def safe_sqrt(sq):
  """sqrt(max(sq, tiny)): finite value and finite gradient at sq = 0."""
  return jnp.sqrt(jnp.maximum(sq, jnp.finfo(sq.dtype).tiny))


def pairwise_distances(x, y):
  """Euclidean distances ||x_i - y_j|| [N, M], safe at coincident points."""
  return safe_sqrt(pairwise_sq_distances(x, y))


@dataclasses.dataclass(frozen=True)
class RadialKernel:
  """A radial kernel k(x, y) = phi(||x - y||) with a temperature.

  Attributes:
    name: registry key (the config string).
    log_kernel: (squared distance [...], temperature) -> log k [...].
  """
  name: str
  log_kernel: Callable

  def __call__(self, sq_dist, temperature):
    return self.log_kernel(sq_dist, temperature)


def _laplace(sq, tau):
  return -safe_sqrt(sq) / tau


def _gaussian(sq, tau):
  return -sq / (2.0 * tau * tau)


def _imq(sq, tau):
  return -0.5 * jnp.log1p(sq / (tau * tau))


def _cauchy(sq, tau):
  return -jnp.log1p(sq / (tau * tau))


KERNELS = {
    'laplace': RadialKernel('laplace', _laplace),
    'gaussian': RadialKernel('gaussian', _gaussian),
    'imq': RadialKernel('imq', _imq),
    'cauchy': RadialKernel('cauchy', _cauchy),
}


def get_kernel(kernel: str | RadialKernel) -> RadialKernel:
  """Resolves a kernel name from a config (outside jit) to a RadialKernel."""
  if isinstance(kernel, RadialKernel):
    return kernel
  validation.check_known_name('kernel', kernel, tuple(KERNELS))
  return KERNELS[kernel]


def log_kernel_matrix(x, y, *, kernel='laplace', temperature=0.05):
  """log k(x_i, y_j) for all pairs, [N, M]."""
  x, y = validation.as_points('x', x), validation.as_points('y', y)
  validation.check_same_dim(('x', 'y'), (x, y))
  (tau,) = validation.as_single_temperature(temperature)
  validation.check_spread('temperature', tau, (x, y), get_kernel(kernel))
  return get_kernel(kernel)(pairwise_sq_distances(x, y), tau)
