"""EDM noise levels and preconditioning (Karras et al. 2022, NeurIPS).

x_t = x + sigma * eps (alpha = 1). The DMD/DMD2 recipe (Yin et al. 2024)
samples sigma from a Karras grid of `n` levels between `sigma_min` and
`sigma_max`, ordered so that index 0 is the smallest, and restricts the
generator's distribution-matching step to the indices between 2% and 98%.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from drift_jax.theory import validation

SIGMA_DATA = 0.5  # EDM default; the data std the preconditioning assumes


def karras_sigmas(n=1000, sigma_min=0.002, sigma_max=80.0, rho=7.0):
  """Karras grid, ascending (index 0 = sigma_min) [n] (EDM Eq. 5).

  sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) -
  sigma_max^(1/rho)))^rho, then flipped as in DMD2's code.
  """
  if n < 2:
    raise ValueError(f'`n` must be at least 2, got {n}.')
  if not 0 < sigma_min < sigma_max:
    raise ValueError(f'Need 0 < `sigma_min` < `sigma_max`, got {sigma_min} '
                     f'and {sigma_max}.')
  ramp = jnp.linspace(0.0, 1.0, n)
  lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
  return jnp.flip((hi + ramp * (lo - hi)) ** rho)


def sample_grid_sigmas(key, n, sigmas, min_frac=0.0, max_frac=1.0):
  """n noise levels drawn uniformly from grid indices [min_frac, max_frac].

  DMD2 uses min_frac=0.02, max_frac=0.98 on a 1000-level grid: indices
  20..980 inclusive.
  """
  if not 0.0 <= min_frac <= max_frac <= 1.0:
    raise ValueError(f'Need 0 <= `min_frac` <= `max_frac` <= 1, got '
                     f'{min_frac} and {max_frac}.')
  size = sigmas.shape[0]
  lo, hi = int(min_frac * size), min(int(max_frac * size), size - 1)
  return sigmas[jax.random.randint(key, (n,), lo, hi + 1)]


def edm_preconditioning(sigma, sigma_data=SIGMA_DATA):
  """(c_skip, c_out, c_in, c_noise) of EDM Table 1.

  D(x, sigma) = c_skip x + c_out F(c_in x, c_noise) with
  c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2),
  c_in = 1 / sqrt(sigma^2 + sd^2), c_noise = log(sigma) / 4.
  """
  validation.check_positive_scalar('sigma', sigma)
  sigma = jnp.asarray(sigma)
  total = sigma**2 + sigma_data**2
  return (sigma_data**2 / total, sigma * sigma_data / jnp.sqrt(total),
          1.0 / jnp.sqrt(total), jnp.log(sigma) / 4.0)


def edm_loss_weight(sigma, sigma_data=SIGMA_DATA):
  """lambda(sigma) = 1/sigma^2 + 1/sd^2 = 1 / c_out^2 (EDM Eq. 8)."""
  return 1.0 / sigma**2 + 1.0 / sigma_data**2
