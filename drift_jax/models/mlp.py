"""MLP generator and noise-conditional MLP denoiser (Flax NNX).

The drifting paper's toy generator is 32 -> 256 -> 256 -> 256 -> D with SiLU
(Deng et al. 2026, demo notebook): `MLPGenerator(noise_dim=32, width=256,
depth=3, out_dim=D)`. The denoiser wraps an MLP F in EDM preconditioning
(Karras et al. 2022, Table 1): D(x, sigma) = c_skip x + c_out F(c_in x,
c_noise), so it is the diffusion teacher and DMD's fake denoiser alike.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from drift_jax import noise as noise_lib
from drift_jax import validation


class MLP(nnx.Module):
  """in_dim -> width (x depth, SiLU) -> out_dim."""

  def __init__(self, in_dim: int, out_dim: int, *, width: int, depth: int,
               rngs: nnx.Rngs):
    if depth < 1 or width < 1:
      raise ValueError(f'`depth` and `width` must be >= 1, got {depth}, '
                       f'{width}.')
    dims = [in_dim] + [width] * depth
    self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs)
                            for a, b in zip(dims[:-1], dims[1:], strict=True)])
    self.out = nnx.Linear(width, out_dim, rngs=rngs)

  def __call__(self, h):
    for layer in self.hidden:
      h = nnx.silu(layer(h))
    return self.out(h)


class MLPGenerator(nnx.Module):
  """One-step generator x = f(z), z ~ N(0, I) of dimension `noise_dim`."""

  def __init__(self, noise_dim: int, out_dim: int, *, width: int = 256,
               depth: int = 3, rngs: nnx.Rngs):
    self.noise_dim = noise_dim
    self.net = MLP(noise_dim, out_dim, width=width, depth=depth, rngs=rngs)

  def __call__(self, z):
    if z.shape[-1] != self.noise_dim:
      raise ValueError(f'Noise `z` must have {self.noise_dim} features, got '
                       f'shape {z.shape}.')
    return self.net(z)  # [N, D]

  def sample_noise(self, key, n: int):
    return jax.random.normal(key, (n, self.noise_dim))


class EDMDenoiser(nnx.Module):
  """D(x, sigma) = c_skip x + c_out F([c_in x, c_noise]) (EDM Table 1)."""

  def __init__(self, dim: int, *, width: int = 256, depth: int = 3,
               sigma_data: float = noise_lib.SIGMA_DATA, rngs: nnx.Rngs):
    self.sigma_data = sigma_data
    self.net = MLP(dim + 1, dim, width=width, depth=depth, rngs=rngs)

  def __call__(self, x, sigma):
    sigma = validation.per_sample_sigma(sigma, x.shape[0], x.dtype)
    c_skip, c_out, c_in, c_noise = noise_lib.edm_preconditioning(
        sigma, self.sigma_data)
    h = jnp.concatenate([c_in[:, None] * x, c_noise[:, None]], axis=-1)
    return c_skip[:, None] * x + c_out[:, None] * self.net(h)
