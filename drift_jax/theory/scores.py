"""Tweedie score estimators and the radial-kernel score decomposition.

Conventions follow EDM (Karras et al. 2022): x_t = x + sigma * eps, a denoiser
D(x_t, sigma) estimates E[x | x_t], and the score of the smoothed density is
grad log p_sigma(x_t) = (D(x_t, sigma) - x_t) / sigma^2   (Tweedie).

For an empirical distribution p_hat = 1/N sum_j delta(y_j), the posterior mean
is exact and closed form (the KDE denoiser):
D_p_hat(x; sigma) = sum_j softmax_j(-||x - y_j||^2 / (2 sigma^2)) y_j,
so the Gaussian `nw` drifting field is D_p_hat - D_q_hat
= sigma^2 (grad log p_hat_sigma - grad log q_hat_sigma)
(Lai et al. 2026, arXiv 2603.07514, via Tweedie's formula).

For the Laplace kernel k = exp(-r / tau), the companion kernel
psi(r) = tau (tau + r) exp(-r / tau) satisfies grad_x psi(||x - y||) =
k(x, y) (y - x), hence V_p = lambda_p grad log P_psi with
lambda_p = P_psi / P_k = tau (tau + rbar_p), rbar_p the kernel-weighted mean
distance, and V = V_p - V_q splits exactly into a preconditioned score
difference plus a scale-mismatch residual (`laplace_decomposition`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax.fields import conservative
from drift_jax.fields import kernels as kernels_lib
from drift_jax.theory import validation


def kde_denoiser(x, samples, sigma, *, weights=None, exclude_self=False):
  """Exact posterior mean E[y | y + sigma eps = x] for y ~ empirical samples.

  Args:
    x: [N, D] noisy points.
    samples: [M, D] the empirical distribution's atoms.
    sigma: scalar or [N] noise standard deviation(s), > 0.
    weights: optional [M] non-negative atom weights.
    exclude_self: samples[i] is x[i] and is left out for x[i] (leave-one-out).

  Returns:
    [N, D] sum_j softmax_j(-||x - y_j||^2 / (2 sigma^2) + log w_j) y_j.
  """
  x, samples = validation.check_queries_and_samples(x, 'samples', samples,
                                                    exclude_self)
  weights = validation.check_weights('weights', weights, samples.shape[0])
  sig = validation.per_sample_sigma(sigma, x.shape[0], x.dtype)[:, None]
  validation.check_spread('sigma', sigma, (x, samples))
  logits = -kernels_lib.pairwise_sq_distances(x, samples) / (2.0 * sig**2)
  if exclude_self:
    logits = jnp.where(jnp.eye(x.shape[0], dtype=bool), -jnp.inf, logits)
  if weights is not None:
    logits = logits + jnp.log(weights)[None, :]
  return validation.checked_output(
      'kde_denoiser',
      kernels_lib.matmul(jax.nn.softmax(logits, axis=-1), samples))


def denoiser_to_score(denoised, x_t, sigma):
  """Tweedie: grad log p_sigma(x_t) = (D(x_t, sigma) - x_t) / sigma^2."""
  denoised = validation.as_points('denoised', denoised)
  x_t = validation.as_points('x_t', x_t)
  if jnp.shape(denoised) != jnp.shape(x_t):
    raise ValueError(f'`denoised` {jnp.shape(denoised)} and `x_t` '
                     f'{jnp.shape(x_t)} must have the same shape.')
  sig = validation.per_sample_sigma(sigma, x_t.shape[0], x_t.dtype)
  return validation.checked_output('denoiser_to_score',
                                   (denoised - x_t) / sig[:, None]**2)


def kde_score(x, samples, sigma, *, weights=None, exclude_self=False):
  """grad log of the Gaussian KDE sum_j w_j N(x; y_j, sigma^2 I), [N, D]."""
  denoised = kde_denoiser(x, samples, sigma, weights=weights,
                          exclude_self=exclude_self)
  return denoiser_to_score(denoised, x, sigma)


def score_difference(real_denoiser, fake_denoiser, x_t, sigma):
  """grad log p_sigma - grad log q_sigma from two denoisers D(x, sigma).

  The DMD direction before its L1 normalisation (Yin et al. 2024, Eq. 7)
  is sigma^2 times this, i.e. D_real - D_fake.

  Args:
    real_denoiser: callable (x [N, D], sigma [N]) -> [N, D].
    fake_denoiser: callable, same signature.
    x_t: [N, D] evaluation points.
    sigma: scalar or [N].
  """
  x_t = validation.as_points('x_t', x_t)
  sig = validation.per_sample_sigma(sigma, x_t.shape[0], x_t.dtype)
  return (denoiser_to_score(real_denoiser(x_t, sig), x_t, sig)
          - denoiser_to_score(fake_denoiser(x_t, sig), x_t, sig))


def laplace_companion(r, temperature):
  """psi(r) = tau (tau + r) exp(-r / tau): grad_x psi(|x-y|) = k (y - x)."""
  return temperature * (temperature + r) * jnp.exp(-r / temperature)


def companion_score(x, y, temperature, *, exclude_self=False):
  """Laplace companion score and preconditioner of one sample set.

  Returns:
    (score, lam): score = grad log P_psi(x) [N, D] with P_psi = sum_j psi(r_j);
    lam = P_psi / P_k = tau (tau + rbar(x)) [N], rbar the Laplace-weighted
    mean distance. Computed as V_y / lam (exact, and stable in log space).
  """
  (tau,) = validation.as_single_temperature(temperature)
  x, y = validation.check_queries_and_samples(x, 'y', y, exclude_self)
  validation.check_spread('temperature', tau, (x, y),
                          kernels_lib.get_kernel('laplace'))
  x, y = lax.stop_gradient(x), lax.stop_gradient(y)
  r = kernels_lib.pairwise_distances(x, y)  # [N, M]
  logk = -r / tau
  if exclude_self:
    logk = jnp.where(jnp.eye(x.shape[0], dtype=bool), -jnp.inf, logk)
  weights = jax.nn.softmax(logk, axis=-1)  # Laplace NW weights, [N, M]
  mean_shift = kernels_lib.matmul(weights, y) - x  # lambda grad log P_psi
  lam = tau * (tau + jnp.sum(weights * r, axis=-1))
  return validation.checked_output('companion_score',
                                   (mean_shift / lam[:, None], lam))


def laplace_decomposition(x, pos, neg, temperature, *, mask_self=False):
  """Splits the Laplace `nw` drifting field into score part and residual.

  V = lbar (s_p - s_q) + 1/2 (lambda_p - lambda_q) (s_p + s_q), with s the
  companion scores grad log P_psi, lambda = tau (tau + rbar) and
  lbar = (lambda_p + lambda_q) / 2 (an exact split of the Laplace field;
  Balasubramanian, arXiv 2605.22795, describes the same structure).

  Args:
    x: [N, D] queries; pos: [Np, D]; neg: [Nn, D].
    temperature: Laplace tau (float).
    mask_self: neg[i] is x[i] (leave-one-out on the q side).

  Returns:
    (score_part, residual), each [N, D]; their sum is
    `drifting_field(..., kernel='laplace', normalization='nw')`.
  """
  x, pos, neg = (validation.as_points(name, arr) for name, arr in
                 (('x', x), ('pos', pos), ('neg', neg)))
  validation.check_same_dim(('x', 'pos', 'neg'), (x, pos, neg))
  s_p, lam_p = companion_score(x, pos, temperature)
  s_q, lam_q = companion_score(x, neg, temperature, exclude_self=mask_self)
  lam_p, lam_q = lam_p[:, None], lam_q[:, None]
  score_part = 0.5 * (lam_p + lam_q) * (s_p - s_q)
  residual = 0.5 * (lam_p - lam_q) * (s_p + s_q)
  return validation.checked_output('laplace_decomposition',
                                   (score_part, residual))


def radial_decomposition(x, y, temperature, *, kernel='laplace',
                         exclude_self=False):
  """The covariance decomposition of one side's mean shift, any radial kernel.

  With weights w_j = softmax_j log phi(r_j), r_j = |y_j - x|, the mean shift
  V_pi(x) = E_w[y - x] splits as

      V_pi(x) = E_w[h] * grad log(pi * phi)(x) + Cov_w(h, (y - x) / h),

  where h(r) = -r phi(r) / phi'(r) and grad log(pi * phi)(x) = E_w[(y - x)
  / h] (the kernel's own smoothed score). It holds for every radial kernel;
  the companion split of `laplace_decomposition` needs integral s phi(s) ds
  < inf and so fails for the IMQ and Cauchy kernels. h is tau^2 for the
  Gaussian kernel (the covariance vanishes: V = tau^2 score, Lai et al.),
  tau r for the Laplace, tau^2 + r^2 for the IMQ and (tau^2 + r^2) / 2 for
  the Cauchy kernel.

  Args:
    x: [N, D] queries; y: [M, D] the side's samples.
    temperature: the kernel's tau (float).
    kernel: a name in `kernels.KERNELS`.
    exclude_self: y[i] is x[i] and is left out for x[i].

  Returns:
    (mean_h [N], score [N, D], covariance [N, D]) with
    V_pi = mean_h[:, None] * score + covariance. The covariance is the
    residual: what is left of the mean shift once its kernel-score part,
    scaled by the mean of h, is taken out.
  """
  (tau,) = validation.as_single_temperature(temperature)
  x, y = validation.check_queries_and_samples(x, 'y', y, exclude_self)
  validation.check_spread('temperature', tau, (x, y),
                          kernels_lib.get_kernel(kernel))
  x, y = lax.stop_gradient(x), lax.stop_gradient(y)
  sq = kernels_lib.pairwise_sq_distances(x, y)  # [N, M]
  is_self = (jnp.eye(x.shape[0], y.shape[0], dtype=bool) if exclude_self
             else jnp.zeros(sq.shape, bool))
  # c = -2 d log phi / d(r^2), so h = 1 / c; self pairs get c = 0 there,
  # and any finite h (their weight is 0).
  logk, c = conservative.log_kernel_and_slope(
      kernels_lib.get_kernel(kernel), sq, 1.0, tau, is_self)
  h = jnp.where(is_self, 1.0, 1.0 / c)
  w = jax.nn.softmax(logk, axis=-1)
  mean_h = jnp.sum(w * h, axis=-1)
  score = (kernels_lib.matmul(w / h, y)
           - jnp.sum(w / h, axis=-1, keepdims=True) * x)
  shift = kernels_lib.matmul(w, y) - x  # E_w[y - x]
  return mean_h, score, shift - mean_h[:, None] * score
