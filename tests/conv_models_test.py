"""Conv generator and EDM U-Net denoiser on digit-sized images."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from drift_jax.models.conv import ConvGenerator
from drift_jax.models.conv import UNetDenoiser
from drift_jax.theory import losses
from drift_jax.theory import noise

SHAPE = (8, 8, 1)

# Compiled calls: op-by-op conv networks are slow on a CPU.
call = nnx.jit(lambda model, *args: model(*args))


def test_generator_shapes_and_conditioning():
  gen = ConvGenerator(16, SHAPE, channels=(16, 8), num_classes=10,
                      rngs=nnx.Rngs(0))
  z = gen.sample_noise(jax.random.key(0), 5)
  x = call(gen, z)
  assert x.shape == (5, 64)
  # Zero-initialised modulation: a fresh generator ignores the label...
  labels = jnp.arange(5)
  np.testing.assert_allclose(call(gen, z, labels, 2.0), x, atol=1e-6)
  # ...and once the modulation is non-zero, labels and alpha change it.
  for block in [gen.first, *gen.ups]:
    block.modulation.kernel[...] = jax.random.normal(
        jax.random.key(1), block.modulation.kernel[...].shape)
  base = call(gen, z, labels, 1.0)
  assert float(jnp.max(jnp.abs(base - call(gen, z, None, 1.0)))) > 1e-3
  assert float(jnp.max(jnp.abs(call(gen, z, labels, 3.0) - base))) > 1e-3
  with pytest.raises(ValueError, match='divisible'):
    ConvGenerator(16, (6, 6, 1), channels=(16, 8, 4), rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r'\[N, 16\]'):
    gen(jnp.ones((5, 3)))


def test_unet_with_zero_output_conv_is_the_gaussian_posterior_mean():
  """F = 0 leaves c_skip x, E[x | x_t] for data N(0, sigma_data^2 I)."""
  den = UNetDenoiser(SHAPE, channels=(8, 16), rngs=nnx.Rngs(0))
  den.out.kernel[...] = jnp.zeros_like(den.out.kernel[...])
  den.out.bias[...] = jnp.zeros_like(den.out.bias[...])
  x = jax.random.normal(jax.random.key(0), (4, 64))
  sigma = jnp.array([0.1, 0.5, 1.0, 3.0])
  c_skip = noise.SIGMA_DATA**2 / (sigma**2 + noise.SIGMA_DATA**2)
  np.testing.assert_allclose(call(den, x, sigma), c_skip[:, None] * x,
                             rtol=1e-5)
  with pytest.raises(ValueError, match='flat'):
    den(jnp.ones((4, 8, 8, 1)), 1.0)


def test_unet_learns_to_denoise_a_fixed_image_set():
  """A few Adam steps of EDM denoising score matching on 16 images lower
  the loss at a mid noise level, i.e. the network trains end to end."""
  rng = np.random.default_rng(0)
  data = jnp.asarray(rng.choice([-1.0, 1.0], size=(16, 64)), jnp.float32)
  den = UNetDenoiser(SHAPE, channels=(8, 16), num_classes=2,
                     rngs=nnx.Rngs(0))
  labels = jnp.arange(16) % 2
  graphdef, params = nnx.split(den)
  tx = optax.adam(3e-3)
  opt = tx.init(params)
  sigma = jnp.full((16,), 0.5)
  eps = jax.random.normal(jax.random.key(1), data.shape)

  def loss_fn(p):
    model = nnx.merge(graphdef, p)
    return losses.denoising_loss(model(data + 0.5 * eps, sigma, labels),
                                 data, sigma)

  @jax.jit
  def step(p, o):
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o, loss

  first = float(jax.jit(loss_fn)(params))
  for _ in range(15):
    params, opt, _ = step(params, opt)
  assert float(jax.jit(loss_fn)(params)) < 0.5 * first
