"""Exact population drifting fields for isotropic Gaussians (float64, NumPy
and SciPy; references for the finite-sample fields, not used in training).

For p = N(mu, s^2 I) in d dimensions and a query x, z = y - x ~ N(m, s^2 I)
with m = mu - x, a = |m|. Every per-side quantity of a radial-kernel field
is E[g(|z|)] or E[g(|z|) z] for some g, and both reduce to one-dimensional
radial integrals over rho = |z|, whose density is the non-central chi
density (the angular integral is a modified Bessel function):

    f(rho) = rho^(d/2) / (s^2 a^(d/2-1)) exp(-(rho^2 + a^2) / (2 s^2))
             I_(d/2-1)(rho a / s^2),
    E[g(|z|) z] = m/a E[g(rho) rho A(rho a / s^2)],
    A(kappa) = I_(d/2)(kappa) / I_(d/2-1)(kappa)

(the mean direction of a von Mises-Fisher distribution on the sphere).
Everything is evaluated in log space (`log_bessel_i`) and integrated with
adaptive quadrature (`scipy.integrate.quad`) over the window where the
integrand lives.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate
from scipy import special

# log phi(rho), and h(rho) = -rho phi / phi' (scores.radial_decomposition).
LOG_PHI = {
    'laplace': lambda r, t: -r / t,
    'gaussian': lambda r, t: -r**2 / (2 * t**2),
    'imq': lambda r, t: -0.5 * np.log1p(r**2 / t**2),
    'cauchy': lambda r, t: -np.log1p(r**2 / t**2),
}
H = {
    'laplace': lambda r, t: t * r,
    'gaussian': lambda r, t: t**2 + 0 * r,
    'imq': lambda r, t: t**2 + r**2,
    'cauchy': lambda r, t: (t**2 + r**2) / 2,
}


def log_bessel_i(nu: float, kappa):
  """log I_nu(kappa) for nu >= 0, kappa >= 0, without overflow or
  underflow: log(ive) + kappa where `scipy.special.ive` is representable,
  else the power series sum_k (kappa^2/4)^k / (k! Gamma(nu + k + 1)) in log
  space (it underflows only where kappa^2 << nu, where the series
  converges in a few terms)."""
  kappa = np.asarray(kappa, np.float64)
  with np.errstate(divide='ignore'):
    scaled = special.ive(nu, kappa)
    direct = np.log(scaled) + kappa
  ok = scaled > 1e-280
  if np.all(ok):
    return direct
  k = np.arange(200.0)[:, None]
  x = np.maximum(kappa[~ok], 1e-300)[None]
  terms = (2 * k * np.log(x / 2) - special.gammaln(k + 1)
           - special.gammaln(nu + k + 1))
  series = special.logsumexp(terms, axis=0) + nu * np.log(x[0] / 2)
  out = np.array(direct, np.float64)
  out[~ok] = series
  return out


def _log_radial_density(rho, a, s, d):
  """log of the density of |z|, z ~ N(m, s^2 I_d), |m| = a (rho > 0)."""
  if a == 0:  # chi with d degrees of freedom, scaled by s
    return ((d - 1) * np.log(rho) - rho**2 / (2 * s**2) - d * math.log(s)
            - (d / 2 - 1) * math.log(2) - special.gammaln(d / 2))
  kappa = rho * a / s**2
  return ((d / 2) * np.log(rho) - 2 * math.log(s) - (d / 2 - 1) * math.log(a)
          - (rho**2 + a**2) / (2 * s**2) + log_bessel_i(d / 2 - 1, kappa))


def _log_mean_direction(rho, a, s, d):
  """log A(rho a / s^2): the mean of the direction of z given |z| = rho,
  along m / a."""
  kappa = rho * a / s**2
  return log_bessel_i(d / 2, kappa) - log_bessel_i(d / 2 - 1, kappa)


def _support(log_integrand, a, s, d, width=40.0, cut=80.0, num=8001):
  """(lo, hi, peak): the interval where the log integrand is within `cut`
  of its maximum, located on a grid over [0, centre + width s] (a kernel
  at small tau tilts the integrand far below the radial density's centre
  sqrt(a^2 + (d - 1) s^2), so the window is found, not assumed)."""
  hi = math.sqrt(a**2 + max(d - 1, 0) * s**2) + width * s
  grid = np.linspace(hi / num, hi, num)
  values = log_integrand(grid)
  top = int(np.argmax(values))
  alive = np.nonzero(values > values[top] - cut)[0]
  step = grid[1] - grid[0]
  return (max(grid[alive[0]] - step, 0.0), grid[alive[-1]] + step,
          grid[top], float(values[top]))


def log_expectation(log_g, a, s, d, *, directed=False):
  """log E[g(|z|)] (or log of E[g(|z|) z] . m/a with `directed`), z ~
  N(m, s^2 I_d), |m| = a; `log_g` maps rho (array) to log g(rho) and may
  be -inf (g = 0 there)."""
  if directed and a == 0:
    return -np.inf  # symmetric: no mean direction

  def log_integrand(rho):
    rho = np.atleast_1d(np.asarray(rho, np.float64))
    value = log_g(rho) + _log_radial_density(rho, a, s, d)
    if directed:
      value = value + np.log(rho) + _log_mean_direction(rho, a, s, d)
    return value

  lo, hi, peak, shift = _support(log_integrand, a, s, d)
  value, _ = integrate.quad(
      lambda r: float(np.exp(log_integrand(r)[0] - shift)), lo, hi,
      points=[peak] if lo < peak < hi else None, limit=500, epsabs=0.0,
      epsrel=1e-12)
  return math.log(value) + shift


class Side:
  """One side (p or q) of a radial-kernel field at one query x, exact.

  Attributes (vectors along (mu - x), [D]):
    shift: the kernel-weighted mean shift V_pi = E[phi z] / E[phi];
    score: the kernel score grad log(pi * phi)(x) = E[phi z / h] / E[phi];
    mean_h: E_w[h] (the covariance split: shift = mean_h score + cov);
    companion_score, lam: Laplace only, grad log(pi * psi) and
      lambda = E[psi] / E[phi] (the companion split).
  """

  def __init__(self, x, mu, s, tau, kernel='laplace'):
    x, mu = np.asarray(x, np.float64), np.asarray(mu, np.float64)
    d, m = x.shape[0], mu - x
    a = float(np.linalg.norm(m))
    unit = m / a if a > 0 else np.zeros_like(m)
    log_phi = lambda r: LOG_PHI[kernel](r, tau)  # noqa: E731
    h = lambda r: H[kernel](r, tau)  # noqa: E731
    log_z = log_expectation(log_phi, a, s, d)

    def along(log_g):
      return math.exp(log_expectation(log_g, a, s, d, directed=True)
                      - log_z) * unit

    self.shift = along(log_phi)
    self.score = along(lambda r: log_phi(r) - np.log(h(r)))
    self.mean_h = math.exp(
        log_expectation(lambda r: log_phi(r) + np.log(h(r)), a, s, d)
        - log_z)
    self.covariance = self.shift - self.mean_h * self.score
    if kernel == 'laplace':
      log_psi = lambda r: (math.log(tau) + np.log(tau + r)  # noqa: E731
                           - r / tau)
      self.lam = math.exp(log_expectation(log_psi, a, s, d) - log_z)
      self.companion_score = self.shift / self.lam


def laplace_field(x, mu_p, mu_q, s, tau, s_q=None):
  """The population Laplace `nw` field V = V_p - V_q at x, p = N(mu_p,
  s^2 I) and q = N(mu_q, s_q^2 I) (s_q = s unless given), and its two
  splits (dict of [D] vectors):

    companion (scores.laplace_decomposition): V = score_part + residual,
      score_part = lbar (s_p - s_q), lbar = (lam_p + lam_q) / 2;
    covariance (scores.radial_decomposition): V = hbar (k_p - k_q)
      + residual_cov, k the Laplace kernel's own scores, hbar the mean of
      the two sides' E_w[h].

  The covariance residual is itself two terms, since V_pi = h_pi k_pi +
  C_pi on each side: residual_cov = mismatch + covariance, with the
  scale mismatch 1/2 (h_p - h_q)(k_p + k_q) and the true covariance part
  C_p - C_q, C_pi = Cov_w(h, (y - x) / h).
  """
  p = Side(x, mu_p, s, tau)
  q = Side(x, mu_q, s if s_q is None else s_q, tau)
  field = p.shift - q.shift
  lbar = 0.5 * (p.lam + q.lam)
  hbar = 0.5 * (p.mean_h + q.mean_h)
  return {
      'field': field,
      'score_part': lbar * (p.companion_score - q.companion_score),
      'residual': field - lbar * (p.companion_score - q.companion_score),
      'kernel_score_part': hbar * (p.score - q.score),
      'residual_cov': field - hbar * (p.score - q.score),
      'mismatch': 0.5 * (p.mean_h - q.mean_h) * (p.score + q.score),
      'covariance': p.covariance - q.covariance,
  }
