"""Tweedie estimators and the Laplace companion-kernel decomposition."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import fields
from drift_jax.theory import distributions
from drift_jax.theory import scores


def _rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.max(np.abs(a - b)) / np.max(np.abs(b))


def _points(seed, shape, shift=0.0):
  return jax.random.normal(jax.random.PRNGKey(seed), shape, jnp.float64) \
      + shift


def test_kde_score_is_grad_log_kde(x64):
  x = _points(0, (20, 3))
  y = _points(1, (30, 3), 0.4)
  sigma = 0.7

  def log_kde(z):
    return jax.nn.logsumexp(-jnp.sum((z - y)**2, -1) / (2 * sigma**2))

  expected = jax.vmap(jax.grad(log_kde))(x)
  assert _rel_err(scores.kde_score(x, y, sigma), expected) <= 1e-10


def test_kde_denoiser_per_sample_sigma_equals_rowwise_calls(x64):
  x = _points(0, (6, 2))
  y = _points(1, (9, 2))
  sig = jnp.linspace(0.2, 2.0, 6)
  batched = scores.kde_denoiser(x, y, sig)
  for i in range(6):
    single = scores.kde_denoiser(x[i:i + 1], y, float(sig[i]))
    assert _rel_err(batched[i:i + 1], single) <= 1e-12


def test_denoiser_difference_equals_gaussian_nw_field(x64):
  # Gaussian drifting field = D_p(x; tau) - D_q(x; tau) at the clean sample.
  x = _points(0, (25, 4))
  pos = _points(1, (30, 4), 0.5)
  tau = 0.9
  v = fields.drifting_field(x, pos, x, kernel='gaussian', temperature=tau,
                            normalization='nw', mask_self=True)
  real = lambda z, s: scores.kde_denoiser(z, pos, s)
  fake = lambda z, s: scores.kde_denoiser(z, x, s, exclude_self=True)
  diff = scores.score_difference(real, fake, x, tau)
  assert _rel_err(tau**2 * diff, v) <= 1e-10


def test_denoiser_to_score_matches_gaussian_data(x64):
  # Data N(m, s0^2 I): the sigma-smoothed score is -(x - m) / (s0^2 + sigma^2)
  # and the posterior mean is m + s0^2 / (s0^2 + sigma^2) (x - m).
  m, s0, sigma = jnp.array([0.3, -1.0]), 0.5, 0.8
  x = _points(2, (10, 2))
  denoised = m + s0**2 / (s0**2 + sigma**2) * (x - m)
  expected = -(x - m) / (s0**2 + sigma**2)
  assert _rel_err(scores.denoiser_to_score(denoised, x, sigma), expected) \
      <= 1e-12


def test_laplace_companion_gradient_identity(x64):
  # grad_x psi(|x - y|) = k(x, y) (y - x), psi(r) = tau (tau + r) e^{-r/tau}.
  tau = 0.4
  x = _points(0, (15, 5))
  y = _points(1, (15, 5))

  def psi(a, b):
    return scores.laplace_companion(jnp.linalg.norm(a - b), tau)

  grad = jax.vmap(jax.grad(psi))(x, y)
  r = jnp.linalg.norm(x - y, axis=-1, keepdims=True)
  assert _rel_err(grad, jnp.exp(-r / tau) * (y - x)) <= 1e-12


@pytest.mark.parametrize('exclude_self', [False, True])
def test_companion_score_and_preconditioner(x64, exclude_self):
  tau = 0.5
  x = _points(0, (12, 3))
  y = x if exclude_self else _points(1, (20, 3), 0.3)
  mask = jnp.eye(12, dtype=bool) if exclude_self else jnp.zeros(
      (12, 20), bool)

  def log_p_psi(z, i):
    # +1e-300 keeps the self pair's gradient finite (it is masked anyway).
    r = jnp.sqrt(jnp.sum((z - y)**2, axis=-1) + 1e-300)
    terms = jnp.where(mask[i], 0.0, scores.laplace_companion(r, tau))
    return jnp.log(jnp.sum(terms))

  score, lam = scores.companion_score(x, y, tau, exclude_self=exclude_self)
  expected = jax.vmap(jax.grad(log_p_psi))(x, jnp.arange(12))
  assert _rel_err(score, expected) <= 1e-10
  # lambda = P_psi / P_k computed directly, against tau (tau + rbar).
  r = jnp.linalg.norm(x[:, None] - y[None], axis=-1)
  k = jnp.where(mask, 0.0, jnp.exp(-r / tau))
  psi = jnp.where(mask, 0.0, scores.laplace_companion(r, tau))
  assert _rel_err(lam, psi.sum(1) / k.sum(1)) <= 1e-12


@pytest.mark.parametrize('mask_self', [False, True])
def test_laplace_decomposition_sums_to_nw_field(x64, mask_self):
  x = _points(0, (30, 8))
  pos = _points(1, (40, 8), 0.6)
  neg = x if mask_self else _points(2, (35, 8), -0.2)
  score_part, residual = scores.laplace_decomposition(
      x, pos, neg, 1.5, mask_self=mask_self)
  v = fields.drifting_field(x, pos, neg, kernel='laplace', temperature=1.5,
                            normalization='nw', mask_self=mask_self)
  assert _rel_err(score_part + residual, v) <= 1e-12
  # The residual is a real, non-zero part of the field at finite d.
  assert float(jnp.max(jnp.abs(residual))) > 1e-6 * float(jnp.max(jnp.abs(v)))


def test_estimators_work_under_jit_and_vmap():
  # Traced sigma and traced mixtures of inputs: no value checks may break.
  gmm = distributions.eight_gaussians()
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 16, 2))
  y = jax.random.normal(jax.random.PRNGKey(1), (3, 20, 2))
  sig = jnp.full((16,), 0.5)
  den = jax.jit(jax.vmap(scores.kde_denoiser, in_axes=(0, 0, None)))(x, y, sig)
  for g in range(3):
    np.testing.assert_allclose(den[g], scores.kde_denoiser(x[g], y[g], 0.5),
                               rtol=1e-5, atol=1e-6)
  oracle = jax.jit(gmm.denoiser)(x[0], sig)
  np.testing.assert_allclose(oracle, gmm.denoiser(x[0], 0.5), rtol=1e-5,
                             atol=1e-6)
  parts = jax.jit(jax.vmap(lambda a, b: scores.laplace_decomposition(
      a, b, a, 0.3, mask_self=True)))(x, y)
  assert parts[0].shape == (3, 16, 2)
  assert bool(jnp.all(jnp.isfinite(parts[0] + parts[1])))


# phi(r) and h(r) = -r phi / phi' written out by hand for each kernel (no
# code shared with kernels.py or scores.py).
_RADIAL = {
    'laplace': (lambda r, t: jnp.exp(-r / t), lambda r, t: t * r),
    'gaussian': (lambda r, t: jnp.exp(-r**2 / (2 * t**2)),
                 lambda r, t: t**2 + 0 * r),
    'imq': (lambda r, t: (1 + r**2 / t**2) ** -0.5,
            lambda r, t: t**2 + r**2),
    'cauchy': (lambda r, t: 1 / (1 + r**2 / t**2),
               lambda r, t: (t**2 + r**2) / 2),
}


@pytest.mark.parametrize('exclude_self', [False, True])
@pytest.mark.parametrize('kernel', sorted(_RADIAL))
def test_radial_covariance_decomposition(x64, kernel, exclude_self):
  """V = E_w[h] grad log(pi * phi) + Cov_w(h, (y - x) / h) to float64
  precision for every kernel, each term from an independent path: the
  score by jax.grad of log sum phi, the covariance in centred form, the
  mean shift from the weights."""
  phi, h_of = _RADIAL[kernel]
  tau = 0.7
  x = jax.random.normal(jax.random.key(0), (6, 2))
  # exclude_self: the side is the query set itself, y[i] = x[i] left out.
  y = x if exclude_self else jax.random.normal(jax.random.key(1),
                                               (9, 2)) + 0.3
  mean_h, score, cov = scores.radial_decomposition(
      x, y, tau, kernel=kernel, exclude_self=exclude_self)
  for i in range(x.shape[0]):
    keep = jnp.arange(y.shape[0]) != i if exclude_self else jnp.ones(
        y.shape[0], bool)
    ys = y[keep]

    def log_smoothed(q, ys=ys):
      return jnp.log(jnp.sum(phi(jnp.linalg.norm(ys - q, axis=-1), tau)))
    np.testing.assert_allclose(score[i], jax.grad(log_smoothed)(x[i]),
                               rtol=1e-10, atol=1e-12)
    r = jnp.linalg.norm(ys - x[i], axis=-1)
    w = phi(r, tau) / jnp.sum(phi(r, tau))
    h = h_of(r, tau)
    u = (ys - x[i]) / h[:, None]
    centred = jnp.sum(w[:, None] * (h - w @ h)[:, None] * (u - w @ u), 0)
    np.testing.assert_allclose(mean_h[i], w @ h, rtol=1e-12)
    np.testing.assert_allclose(cov[i], centred, rtol=1e-9, atol=1e-13)
    shift = w @ ys - x[i]
    np.testing.assert_allclose(mean_h[i] * score[i] + cov[i], shift,
                               rtol=1e-12, atol=1e-14)
  if kernel == 'gaussian':  # h is constant: no covariance (Lai et al.)
    np.testing.assert_allclose(cov, 0.0, atol=1e-14)
  else:
    assert float(jnp.max(jnp.abs(cov))) > 1e-3
