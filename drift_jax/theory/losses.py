"""Losses shared by drifting and DMD: both regress x onto sg(x + V).

loss = 1/2 mean ||x - sg(x + V)||^2, whose gradient with respect to x is
-V / numel (Deng et al. 2026, Eq. 6; DMD2's `0.5 * mse(x, (x - grad))`).
The methods differ only in how V is estimated (Lai et al. 2026, arXiv
2603.07514: with a Gaussian kernel the drifting V is a smoothed score
difference).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from drift_jax.theory import noise as noise_lib
from drift_jax.theory import validation


def drift_loss(x, v):
  """1/2 mean((x - sg(x + V))^2); its value is mean(V^2) / 2."""
  if jnp.shape(x) != jnp.shape(v):
    raise ValueError(f'`x` {jnp.shape(x)} and `v` {jnp.shape(v)} must have '
                     'the same shape.')
  return 0.5 * jnp.mean((x - lax.stop_gradient(x + v))**2)


def dmd_direction(x, real_denoiser, fake_denoiser, sigma, eps=None, *,
                  normalize=True):
  """DMD generator direction (Yin et al. 2024 Eq. 7-8; DMD2 code path).

  V = (D_real(x_t, sigma) - D_fake(x_t, sigma)) / mean_features|x -
  D_real(x_t, sigma)|, with x_t = x + sigma * eps. With `eps=None` the
  denoisers are evaluated at the clean x, and with `normalize=False` the L1
  normalisation is dropped: with KDE denoisers of the data and generated
  batches this is exactly the Gaussian `nw` drifting field (Lai et al.
  2026, arXiv 2603.07514; `tests/losses_test.py`).

  Args:
    x: [N, D] generated samples.
    real_denoiser, fake_denoiser: callables (x [N, D], sigma [N]) -> [N, D].
    sigma: scalar or [N] noise levels.
    eps: optional [N, D] standard normal noise.
    normalize: divide by the per-sample mean absolute denoising residual.

  Returns:
    [N, D] direction, no gradient.
  """
  x = lax.stop_gradient(x)
  sig = validation.per_sample_sigma(sigma, x.shape[0], x.dtype)
  x_t = x if eps is None else x + sig[:, None] * eps
  d_real = real_denoiser(x_t, sig)
  v = d_real - fake_denoiser(x_t, sig)
  if normalize:
    # DMD2 divides by mean_{C,H,W}|x - D_real|, per sample.
    v = v / jnp.mean(jnp.abs(x - d_real), axis=-1, keepdims=True)
  return lax.stop_gradient(jnp.nan_to_num(v))


def denoising_loss(denoised, x0, sigma, sigma_data=noise_lib.SIGMA_DATA):
  """EDM-weighted x0 regression mean(lambda(sigma) (D - x0)^2) (EDM Eq. 2)."""
  weight = noise_lib.edm_loss_weight(jnp.asarray(sigma), sigma_data)
  weight = jnp.reshape(weight, (-1,) + (1,) * (x0.ndim - 1))
  return jnp.mean(weight * (denoised - x0)**2)
