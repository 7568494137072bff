"""Gaussian mixtures (exact scores, smoothing, denoiser) and toy samplers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from drift_jax.theory import distributions


def _rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.max(np.abs(a - b)) / np.max(np.abs(b))


def _random_mixture(seed, k=3, d=4):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(k, d, d))
  covs = a @ np.transpose(a, (0, 2, 1)) / d + 0.2 * np.eye(d)
  return distributions.GaussianMixture(
      jnp.asarray(rng.normal(size=(k, d)) * 2), jnp.asarray(covs),
      jnp.asarray(rng.uniform(0.5, 1.5, k)))


def test_log_prob_matches_scipy(x64):
  gmm = _random_mixture(0)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(20, 4)))
  w = np.asarray(gmm.weights)
  dens = sum(w[k] * stats.multivariate_normal(np.asarray(gmm.means[k]),
                                              np.asarray(gmm.covs[k])).pdf(x)
             for k in range(3))
  assert _rel_err(gmm.log_prob(x), np.log(dens)) <= 1e-10


def test_closed_form_score_equals_autodiff(x64):
  gmm = _random_mixture(2)
  x = jnp.asarray(np.random.default_rng(3).normal(size=(15, 4)))
  auto = jax.vmap(jax.grad(lambda z: gmm.log_prob(z[None])[0]))(x)
  assert _rel_err(gmm.score(x), auto) <= 1e-10


def test_smooth_adds_sigma_squared_to_covariances(x64):
  gmm = _random_mixture(4)
  x = jnp.asarray(np.random.default_rng(5).normal(size=(15, 4)))
  smoothed = gmm.smooth(0.7)
  np.testing.assert_allclose(smoothed.covs, gmm.covs + 0.49 * jnp.eye(4))
  assert _rel_err(smoothed.score(x), gmm.score(x, sigma=0.7)) <= 1e-10
  assert _rel_err(smoothed.log_prob(x), gmm.log_prob(x, sigma=0.7)) <= 1e-10


def test_denoiser_is_tweedie_of_the_smoothed_mixture(x64):
  # Two derivations: posterior means per component vs x + sigma^2 score.
  gmm = _random_mixture(6)
  x = jnp.asarray(np.random.default_rng(7).normal(size=(15, 4)))
  sig = jnp.linspace(0.1, 3.0, 15)
  tweedie = x + sig[:, None]**2 * gmm.score(x, sigma=sig)
  assert _rel_err(gmm.denoiser(x, sig), tweedie) <= 1e-10


def test_sample_moments(x64):
  gmm = _random_mixture(8, k=2, d=3)
  n = 200_000
  s = gmm.sample(jax.random.PRNGKey(0), n)
  w = gmm.weights
  mean = jnp.sum(w[:, None] * gmm.means, 0)
  second = jnp.sum(w[:, None, None] * (gmm.covs + jnp.einsum(
      'ki,kj->kij', gmm.means, gmm.means)), 0)
  cov = second - jnp.outer(mean, mean)
  # Standard error of a mean is sqrt(var / n) ~ 2e-3 * sqrt(var); 6 sigma.
  se = jnp.sqrt(jnp.diag(cov) / n)
  assert bool(jnp.all(jnp.abs(s.mean(0) - mean) < 6 * se))
  np.testing.assert_allclose(np.cov(np.asarray(s).T), cov, atol=0.05)


def test_mixture_rejects_bad_shapes():
  with pytest.raises(ValueError, match='covs'):
    distributions.GaussianMixture(jnp.zeros((2, 3)), jnp.zeros((2, 2, 2)),
                                  jnp.ones(2))
  with pytest.raises(ValueError, match='weights'):
    distributions.GaussianMixture.isotropic(jnp.zeros((2, 3)), 1.0,
                                            jnp.ones(3))
  with pytest.raises(ValueError, match='positive definite'):
    distributions.GaussianMixture(jnp.zeros((1, 2)), jnp.zeros((1, 2, 2)),
                                  jnp.ones(1))
  gmm = distributions.eight_gaussians()
  with pytest.raises(ValueError, match='features'):
    gmm.score(jnp.zeros((4, 3)))
  with pytest.raises(ValueError, match='sigma'):
    gmm.denoiser(jnp.zeros((4, 2)), -1.0)


@pytest.mark.parametrize('name', ['checkerboard', 'swiss_roll', 'two_moons',
                                  'rings', 'eight_gaussians',
                                  'twenty_five_gaussians', 'two_mode'])
def test_toy_samplers_shape_and_range(name):
  pts = distributions.toy_sampler(name)(jax.random.PRNGKey(0), 4096)
  assert pts.shape == (4096, 2)
  assert bool(jnp.all(jnp.isfinite(pts)))
  assert float(jnp.max(jnp.abs(pts))) < 2.0
  assert float(jnp.min(jnp.std(pts, axis=0))) > 0.1


def test_checkerboard_occupies_only_same_parity_cells():
  pts = distributions.sample_checkerboard(jax.random.PRNGKey(0), 20_000,
                                          noise=0.0)
  cells = np.floor(np.asarray(pts) * 2 + 2).astype(int)  # cell indices 0..3
  assert np.all((cells[:, 0] + cells[:, 1]) % 2 == 0)
  assert len({tuple(c) for c in cells}) == 8


def test_two_mode_has_equal_mass_per_mode():
  pts = distributions.toy_sampler('two_mode')(jax.random.PRNGKey(1), 20_000)
  frac = float(jnp.mean(pts[:, 0] > 0))
  assert abs(frac - 0.5) < 0.02  # binomial std 0.0035; about 6 sigma


def test_unknown_toy_name_is_clear():
  with pytest.raises(ValueError, match='dataset'):
    distributions.toy_sampler('spiral_galaxy')


def test_load_point_cloud_npy_and_npz(tmp_path):
  data = np.random.default_rng(0).normal(size=(50, 3))
  np.save(tmp_path / 'a.npy', data)
  np.testing.assert_allclose(
      distributions.load_point_cloud(str(tmp_path / 'a.npy')), data,
      rtol=1e-6)
  np.savez(tmp_path / 'one.npz', pts=data)
  assert distributions.load_point_cloud(str(tmp_path / 'one.npz')).shape \
      == (50, 3)
  np.savez(tmp_path / 'two.npz', a=data, b=data[:10])
  with pytest.raises(ValueError, match='key'):
    distributions.load_point_cloud(str(tmp_path / 'two.npz'))
  assert distributions.load_point_cloud(str(tmp_path / 'two.npz'),
                                        key='b').shape == (10, 3)


def test_load_point_cloud_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='missing.npy'):
    distributions.load_point_cloud(str(tmp_path / 'missing.npy'))
  np.save(tmp_path / 'flat.npy', np.zeros(10))
  with pytest.raises(ValueError, match=r'\[N, D\]'):
    distributions.load_point_cloud(str(tmp_path / 'flat.npy'))
  bad = np.zeros((5, 2))
  bad[2, 1] = np.nan
  np.save(tmp_path / 'nan.npy', bad)
  with pytest.raises(ValueError, match='NaN'):
    distributions.load_point_cloud(str(tmp_path / 'nan.npy'))
  (tmp_path / 'x.csv').write_text('1,2\n')
  with pytest.raises(ValueError, match='npy'):
    distributions.load_point_cloud(str(tmp_path / 'x.csv'))
