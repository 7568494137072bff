"""Kernels and pairwise distances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax.fields import kernels


@pytest.mark.parametrize('dim', [5, 12])  # direct differences / expansion
def test_pairwise_distances_match_direct_formula(x64, dim):
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(9, dim)) + 100.0, rng.normal(size=(7, dim)) + 100.0
  direct = np.linalg.norm(x[:, None] - y[None], axis=-1)
  got = kernels.pairwise_distances(jnp.asarray(x), jnp.asarray(y))
  # Centring removes the cancellation far from the origin (offset 100).
  np.testing.assert_allclose(got, direct, rtol=1e-10)


@pytest.mark.parametrize('dim', [3, 12])  # direct differences / expansion
def test_float32_distances_far_from_origin(dim):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(20, dim)).astype(np.float32) + 1000.0
  direct = np.linalg.norm(x[:, None].astype(np.float64) - x[None], axis=-1)
  got = np.asarray(kernels.pairwise_distances(jnp.asarray(x), jnp.asarray(x)))
  off_diag = ~np.eye(20, dtype=bool)
  # Without centring the float32 expansion loses ~1e6 * 1e-7 = 0.1 absolute.
  np.testing.assert_allclose(got[off_diag], direct[off_diag], rtol=1e-3)


def test_distance_gradient_finite_at_coincident_points():
  x = jnp.ones((3, 2))
  grad = jax.grad(lambda z: jnp.sum(kernels.pairwise_distances(z, z)))(x)
  assert bool(jnp.all(jnp.isfinite(grad)))


@pytest.mark.parametrize('name, formula', [
    ('laplace', lambda r, t: np.exp(-r / t)),
    ('gaussian', lambda r, t: np.exp(-r**2 / (2 * t**2))),
    ('imq', lambda r, t: (1 + r**2 / t**2)**-0.5),
    ('cauchy', lambda r, t: 1 / (1 + r**2 / t**2)),
])
def test_kernel_formulas(x64, name, formula):
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
  r = np.linalg.norm(x[:, None] - y[None], axis=-1)
  got = kernels.log_kernel_matrix(jnp.asarray(x), jnp.asarray(y),
                                  kernel=name, temperature=0.3)
  np.testing.assert_allclose(np.exp(got), formula(r, 0.3), rtol=1e-10)


def test_unknown_kernel_is_named():
  with pytest.raises(ValueError, match="kernel.*'epanechnikov'"):
    kernels.get_kernel('epanechnikov')
