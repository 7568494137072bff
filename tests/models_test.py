"""NNX generator and EDM denoiser."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from drift_jax.models import EDMDenoiser
from drift_jax.models import MLPGenerator
from drift_jax.theory import distributions
from drift_jax.theory import losses
from drift_jax.theory import noise


def test_generator_shapes_and_noise_check():
  gen = MLPGenerator(32, 2, width=64, depth=3, rngs=nnx.Rngs(0))
  z = gen.sample_noise(jax.random.PRNGKey(0), 10)
  assert gen(z).shape == (10, 2)
  assert len(gen.net.hidden) == 3
  with pytest.raises(ValueError, match='32 features'):
    gen(jnp.ones((10, 8)))


def test_denoiser_with_zero_network_is_gaussian_posterior_mean():
  # With F = 0 the EDM denoiser is c_skip x, the exact E[x | x_t] for data
  # N(0, sigma_data^2 I): the preconditioning is what makes a fresh network
  # a sensible denoiser.
  den = EDMDenoiser(3, width=16, depth=2, rngs=nnx.Rngs(0))
  den.net.out.kernel[...] = jnp.zeros_like(den.net.out.kernel[...])
  den.net.out.bias[...] = jnp.zeros_like(den.net.out.bias[...])
  x = jax.random.normal(jax.random.PRNGKey(1), (8, 3))
  sigma = jnp.linspace(0.1, 5.0, 8)
  expected = 0.25 / (sigma**2 + 0.25)
  np.testing.assert_allclose(den(x, sigma), expected[:, None] * x, rtol=1e-6)


def test_denoiser_learns_with_split_merge_jit():
  gmm = distributions.eight_gaussians()
  sigmas = noise.karras_sigmas(100, 0.01, 3.0)
  den = EDMDenoiser(2, width=64, depth=2, rngs=nnx.Rngs(0))
  graph, params = nnx.split(den)
  tx = optax.adam(3e-3)
  opt_state = tx.init(params)

  def loss_fn(p, key, n=256, denoiser=None):
    kx, ks, ke = jax.random.split(key, 3)
    x0 = gmm.sample(kx, n)
    sigma = noise.sample_grid_sigmas(ks, n, sigmas)
    x_t = x0 + sigma[:, None] * jax.random.normal(ke, x0.shape)
    denoiser = denoiser or nnx.merge(graph, p)
    return losses.denoising_loss(denoiser(x_t, sigma), x0, sigma)

  def excess_loss(p):
    # The EDM loss has a floor (the posterior variance); measure the excess
    # over the exact GMM denoiser on one large fixed batch.
    key = jax.random.PRNGKey(123)
    return float(loss_fn(p, key, 8192) - loss_fn(p, key, 8192, gmm.denoiser))

  @jax.jit
  def step(p, o, key):
    loss, grads = jax.value_and_grad(loss_fn)(p, key)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o, loss

  before = excess_loss(params)
  for i in range(300):
    params, opt_state, _ = step(params, opt_state, jax.random.PRNGKey(i))
  after = excess_loss(params)
  assert after < 0.5 * before, (before, after)


def test_generator_init_offset_and_scale_place_the_initial_samples():
  from drift_jax.models.mlp import MLPGenerator
  z = jax.random.normal(jax.random.key(0), (2000, 8))
  plain = MLPGenerator(8, 2, width=16, depth=2, rngs=nnx.Rngs(0))
  placed = MLPGenerator(8, 2, width=16, depth=2, rngs=nnx.Rngs(0),
                        init_offset=(4.0, -1.0), init_scale=0.01)
  x0, x1 = plain(z), placed(z)
  # Same hidden layers: the output is exactly offset + 0.01 * plain output.
  np.testing.assert_allclose(x1, 0.01 * x0 + jnp.array([4.0, -1.0]),
                             rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='init_offset'):
    MLPGenerator(8, 2, width=16, depth=2, rngs=nnx.Rngs(0),
                 init_offset=(1.0, 2.0, 3.0))
  with pytest.raises(ValueError, match='init_scale'):
    MLPGenerator(8, 2, width=16, depth=2, rngs=nnx.Rngs(0), init_scale=0.0)
