"""The mean shift V_p(x) = sum_j k(x, y_j) (y_j - x) / sum_j k(x, y_j)
(Deng et al. 2026, Eqs. 8-11)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax.fields import kernels as kernels_lib
from drift_jax.fields.kernel_weighted import _log_kernels
from drift_jax.theory import validation


def mean_shift(x, y, *, kernel='laplace', temperature=0.05, weights=None,
               exclude_self=False):
  """Nadaraya-Watson mean shift m_y(x) - x (Deng Eq. 8-9).

  Args:
    x: [N, D] query points.
    y: [M, D] samples.
    kernel: kernel name (see `kernels.KERNELS`) or a RadialKernel.
    temperature: positive float.
    weights: optional [M] non-negative sample weights.
    exclude_self: if True, y[i] is x[i] and is left out for x[i]
      (leave-one-out); needs M == N >= 2.

  Returns:
    [N, D] sum_j w_j k(x, y_j) (y_j - x) / sum_j w_j k(x, y_j).
  """
  x, y = validation.check_queries_and_samples(x, 'y', y, exclude_self)
  (tau,) = validation.as_single_temperature(temperature)
  weights = validation.check_weights('weights', weights, y.shape[0])
  kern = kernels_lib.get_kernel(kernel)
  validation.check_spread('temperature', tau, (x, y), kern)
  x, y = lax.stop_gradient(x), lax.stop_gradient(y)
  logk = _log_kernels(kernels_lib.pairwise_sq_distances(x, y), kern, (tau,),
                      1.0, jnp.arange(x.shape[0]), 0, exclude_self)[0]
  if weights is not None:
    logk = logk + jnp.log(weights)[None, :]
  return validation.checked_output(
      'mean_shift', kernels_lib.matmul(jax.nn.softmax(logk, axis=-1), y) - x)
