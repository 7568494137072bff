"""Drift / DMD losses, the EDM noise helpers, and the kde-DMD bridge."""

import jax
import jax.numpy as jnp
import numpy as np

from drift_jax import fields
from drift_jax.theory import distributions
from drift_jax.theory import losses
from drift_jax.theory import noise
from drift_jax.theory import scores


def test_dmd_with_kde_denoisers_at_clean_x_is_gaussian_drifting(x64):
  # The bridge (Lai et al. 2026): ideal empirical denoisers, clean evaluation
  # point, one sigma, no L1 normalisation == Gaussian nw drifting field.
  x = jax.random.normal(jax.random.PRNGKey(0), (40, 3), jnp.float64)
  pos = jax.random.normal(jax.random.PRNGKey(1), (50, 3), jnp.float64) + 0.5
  sigma = 0.7
  real = lambda z, s: scores.kde_denoiser(z, pos, s)
  fake = lambda z, s: scores.kde_denoiser(z, x, s, exclude_self=True)
  v_dmd = losses.dmd_direction(x, real, fake, sigma, normalize=False)
  v_drift = fields.drifting_field(x, pos, x, kernel='gaussian',
                                  temperature=sigma, normalization='nw')
  np.testing.assert_allclose(v_dmd, v_drift, rtol=1e-10, atol=1e-13)


def test_dmd_direction_normalisation_and_noise():
  gmm = distributions.eight_gaussians()
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 2))
  eps = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
  fake = lambda z, s: jnp.zeros_like(z)
  v = losses.dmd_direction(x, gmm.denoiser, fake, 0.3, eps)
  d_real = gmm.denoiser(x + 0.3 * eps, jnp.full((16,), 0.3))
  expected = d_real / jnp.mean(jnp.abs(x - d_real), -1, keepdims=True)
  np.testing.assert_allclose(v, expected, rtol=1e-5)


def test_drift_loss_value_and_gradient():
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 3))
  v = jax.random.normal(jax.random.PRNGKey(1), (8, 3))
  np.testing.assert_allclose(losses.drift_loss(x, v), 0.5 * jnp.mean(v**2),
                             rtol=1e-6)
  np.testing.assert_allclose(jax.grad(losses.drift_loss)(x, v), -v / x.size,
                             rtol=1e-6)


def test_karras_grid():
  s = noise.karras_sigmas(1000)
  np.testing.assert_allclose([s[0], s[-1]], [0.002, 80.0], rtol=1e-5)
  assert bool(jnp.all(jnp.diff(s) > 0))
  picked = noise.sample_grid_sigmas(jax.random.PRNGKey(0), 20_000, s, 0.02,
                                    0.98)
  assert float(picked.min()) >= float(s[20]) and float(picked.max()) <= float(
      s[980])
  # Both end indices are reachable (inclusive range, as in DMD2).
  assert float(picked.min()) == float(s[20])
  assert float(picked.max()) == float(s[980])


def test_edm_preconditioning_properties():
  sigma = jnp.array([0.01, 0.5, 3.0, 80.0])
  c_skip, c_out, c_in, _ = noise.edm_preconditioning(sigma)
  # For data N(0, sd^2) the exact denoiser is c_skip x_t (EDM Eq. 7 at F=0),
  # x_t = x + sigma eps has unit variance after c_in, and lambda c_out^2 = 1.
  np.testing.assert_allclose(c_skip, 0.25 / (sigma**2 + 0.25), rtol=1e-6)
  np.testing.assert_allclose(c_in**2 * (sigma**2 + 0.25), 1.0, rtol=1e-6)
  np.testing.assert_allclose(noise.edm_loss_weight(sigma) * c_out**2, 1.0,
                             rtol=1e-5)


def test_denoising_loss_is_minimised_by_the_posterior_mean():
  gmm = distributions.eight_gaussians()
  kx, ke, ks = jax.random.split(jax.random.PRNGKey(0), 3)
  x0 = gmm.sample(kx, 20_000)
  sigma = noise.sample_grid_sigmas(ks, 20_000, noise.karras_sigmas(100, 0.02,
                                                                   2.0))
  x_t = x0 + sigma[:, None] * jax.random.normal(ke, x0.shape)
  best = gmm.denoiser(x_t, sigma)
  loss = lambda d: float(losses.denoising_loss(d, x0, sigma))
  assert loss(best) < loss(best * 1.05)
  assert loss(best) < loss(x_t)
