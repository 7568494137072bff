"""Exact population fields (`population`) against the Gaussian-kernel
closed form, Monte Carlo with 10^6 samples, and Bessel identities."""

import math

import numpy as np
import pytest
from scipy import special

from drift_jax.theory import population


def test_log_bessel_matches_scipy_where_representable():
  for nu in (0.0, 0.5, 7.0, 63.0):
    kappa = np.array([1e-3, 0.2, 5.0, 300.0])
    np.testing.assert_allclose(population.log_bessel_i(nu, kappa),
                               np.log(special.ive(nu, kappa)) + kappa,
                               rtol=1e-13)


def test_log_bessel_recurrence_where_scipy_underflows():
  """I_(nu-1) - I_(nu+1) = (2 nu / kappa) I_nu, at orders and arguments
  where `ive` underflows (the series path)."""
  for nu, kappa in ((255.0, 0.2), (255.0, 5.0), (400.0, 1e-3)):
    assert special.ive(nu, kappa) == 0.0  # the series path is the one used
    lo, mid, hi = (population.log_bessel_i(n, np.array([kappa]))[0]
                   for n in (nu - 1, nu, nu + 1))
    lhs = lo + math.log1p(-math.exp(hi - lo))
    assert abs(lhs - (math.log(2 * nu / kappa) + mid)) < 1e-10


@pytest.mark.parametrize('tau', [0.01, 0.4, 30.0])
@pytest.mark.parametrize('d', [2, 16, 256])
def test_gaussian_kernel_closed_form(d, tau):
  """p = N(mu, s^2 I), Gaussian kernel of std tau: V_p = tau^2 (mu - x)
  / (s^2 + tau^2), the kernel score (mu - x) / (s^2 + tau^2), h = tau^2 and
  no covariance term. A small tau tilts the radial integrand far from the
  radial density's centre (the integration window must follow it)."""
  rng = np.random.default_rng(0)
  x = 0.3 * rng.normal(size=d)
  mu = np.zeros(d)
  mu[0] = 1.0
  s = 0.5
  side = population.Side(x, mu, s, tau, kernel='gaussian')
  ref = (mu - x) / (s**2 + tau**2)
  np.testing.assert_allclose(side.shift, tau**2 * ref, rtol=1e-11,
                             atol=1e-14)
  np.testing.assert_allclose(side.score, ref, rtol=1e-11, atol=1e-14)
  assert side.mean_h == pytest.approx(tau**2, rel=1e-12)
  np.testing.assert_allclose(side.covariance, 0.0, atol=1e-13)


def _monte_carlo(x, mu, s, tau, n=10**6, batches=50, seed=1):
  """Ratio estimates of each Laplace quantity per batch of n / batches."""
  rng = np.random.default_rng(seed)
  out = {'shift': [], 'score': [], 'mean_h': [], 'lam': []}
  for _ in range(batches):
    z = mu - x + s * rng.normal(size=(n // batches, x.shape[0]))
    r = np.linalg.norm(z, axis=1)
    k = np.exp(-r / tau)
    mass = k.mean()
    out['shift'].append((k[:, None] * z).mean(0) / mass)
    out['score'].append((k[:, None] * z / (tau * r)[:, None]).mean(0) / mass)
    out['mean_h'].append((k * tau * r).mean() / mass)
    out['lam'].append((tau * (tau + r) * k).mean() / mass)
  return {key: np.array(v) for key, v in out.items()}


@pytest.mark.parametrize('d', [2, 16])
def test_laplace_side_agrees_with_monte_carlo(d):
  """Within 5 standard errors of a 10^6-sample Monte Carlo (50 batches),
  for the mean shift, the kernel score, E_w[h] and lambda."""
  rng = np.random.default_rng(2)
  x = 0.3 * rng.normal(size=d)
  mu = np.zeros(d)
  mu[0] = 1.0
  s, tau = 0.5, 0.3
  side = population.Side(x, mu, s, tau, kernel='laplace')
  for key, values in _monte_carlo(x, mu, s, tau).items():
    mean = values.mean(0)
    stderr = values.std(0) / math.sqrt(len(values))
    assert np.all(np.abs(getattr(side, key) - mean) < 5 * stderr), key
  np.testing.assert_allclose(side.companion_score * side.lam, side.shift,
                             rtol=1e-14)


def test_laplace_field_splits_sum_to_the_field():
  d = 8
  x = np.full(d, 0.1)
  mu_p, mu_q = np.zeros(d), np.zeros(d)
  mu_p[0], mu_q[0] = 1.0, -0.5
  parts = population.laplace_field(x, mu_p, mu_q, 0.5, 0.3, s_q=0.8)
  for score, residual in (('score_part', 'residual'),
                          ('kernel_score_part', 'residual_cov')):
    np.testing.assert_allclose(parts[score] + parts[residual],
                               parts['field'], rtol=1e-13, atol=1e-15)
  # The covariance residual's two terms: scale mismatch + C_p - C_q.
  np.testing.assert_allclose(parts['mismatch'] + parts['covariance'],
                             parts['residual_cov'], rtol=1e-12, atol=1e-15)
  # Unequal scales on the two sides: the mismatch term does not vanish.
  assert np.linalg.norm(parts['mismatch']) > 1e-3 * np.linalg.norm(
      parts['field'])
  # The field points from q's mean towards p's along the first axis.
  assert parts['field'][0] > 0
