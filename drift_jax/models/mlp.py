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

from drift_jax.models import edm
from drift_jax.models.network import Network
from drift_jax.theory import noise as noise_lib
from drift_jax.theory import validation

INITS = ('lecun', 'torch')


def _linear(fan_in: int, fan_out: int, init: str, rngs: nnx.Rngs):
  """nnx.Linear with Flax's init ('lecun': normal weights, zero bias) or
  PyTorch's nn.Linear default ('torch': weights and bias uniform in
  +-1/sqrt(fan_in)), which the drifting paper's demo notebook uses."""
  if init == 'lecun':
    return nnx.Linear(fan_in, fan_out, rngs=rngs)
  bound = 1.0 / fan_in**0.5
  return nnx.Linear(
      fan_in, fan_out, rngs=rngs,
      kernel_init=nnx.initializers.variance_scaling(1 / 3, 'fan_in',
                                                    'uniform'),
      bias_init=lambda key, shape, dtype=jnp.float32: jax.random.uniform(
          key, shape, dtype, -bound, bound))


class MLP(nnx.Module):
  """in_dim -> width (x depth, SiLU) -> out_dim."""

  def __init__(self, in_dim: int, out_dim: int, *, width: int, depth: int,
               rngs: nnx.Rngs, init: str = 'lecun'):
    if depth < 1 or width < 1:
      raise ValueError(f'`depth` and `width` must be >= 1, got {depth}, '
                       f'{width}.')
    validation.check_known_name('init', init, INITS)
    dims = [in_dim] + [width] * depth
    self.hidden = nnx.List([_linear(a, b, init, rngs)
                            for a, b in zip(dims[:-1], dims[1:], strict=True)])
    self.out = _linear(width, out_dim, init, rngs)

  def __call__(self, h):
    for layer in self.hidden:
      h = nnx.silu(layer(h))
    return self.out(h)


class MLPGenerator(nnx.Module):
  """One-step generator x = f(z), z ~ N(0, I) of dimension `noise_dim`."""

  def __init__(self, noise_dim: int, out_dim: int, *, width: int = 256,
               depth: int = 3, rngs: nnx.Rngs, init: str = 'lecun',
               init_offset=(), init_scale: float = 1.0):
    """`init_offset` ([out_dim] or empty) and `init_scale` place the initial
    output distribution: the output layer's weights and bias are multiplied
    by init_scale and the offset is added to the bias, so a small scale and
    an offset start the generator collapsed near that point (Deng et al.
    Fig. 3's initialisations)."""
    self.noise_dim = noise_dim
    self.net = MLP(noise_dim, out_dim, width=width, depth=depth, rngs=rngs,
                   init=init)
    if len(init_offset) not in (0, out_dim):
      raise ValueError(f'`init_offset` must be empty or have {out_dim} '
                       f'entries (the data dimension), got {init_offset}.')
    if not init_scale > 0:
      raise ValueError(f'`init_scale` must be > 0, got {init_scale}.')
    if init_offset or init_scale != 1.0:
      out = self.net.out
      out.kernel[...] = out.kernel[...] * init_scale
      out.bias[...] = (out.bias[...] * init_scale
                        + jnp.asarray(init_offset or 0.0, jnp.float32))

  def __call__(self, z, labels=None, alpha=None):
    if z.shape[-1] != self.noise_dim:
      raise ValueError(f'Noise `z` must have {self.noise_dim} features, got '
                       f'shape {z.shape}.')
    if labels is not None or alpha is not None:
      raise ValueError('MLPGenerator is unconditional: it takes no `labels` '
                       'or `alpha` (use model.generator.name=conv).')
    return self.net(z)  # [N, D]

  def sample_noise(self, key, n: int):
    return jax.random.normal(key, (n, self.noise_dim))


class EDMDenoiser(edm.EDMPreconditioned):
  """D(x, sigma) = c_skip x + c_out F([c_in x, c_noise]) (EDM Table 1)."""

  def __init__(self, dim: int, *, width: int = 256, depth: int = 3,
               sigma_data: float = noise_lib.SIGMA_DATA, rngs: nnx.Rngs):
    self.sigma_data = sigma_data
    self.net = MLP(dim + 1, dim, width=width, depth=depth, rngs=rngs)

  def backbone(self, x_in, c_noise, labels):
    if labels is not None:
      raise ValueError('EDMDenoiser is unconditional: it takes no `labels` '
                       '(use model.denoiser.name=unet).')
    return self.net(jnp.concatenate([x_in, c_noise[:, None]], axis=-1))


def _check_generator(section) -> None:
  validation.check_known_name('model.generator.init', section.init, INITS)


def _build_generator(section, *, dim, image_shape, num_classes, rngs):
  del image_shape, num_classes
  return MLPGenerator(section.noise_dim, dim, width=section.width,
                      depth=section.depth, rngs=rngs, init=section.init,
                      init_offset=tuple(section.init_offset),
                      init_scale=section.init_scale)


def _build_denoiser(section, *, dim, image_shape, num_classes, rngs,
                    sigma_data):
  del image_shape, num_classes
  return EDMDenoiser(dim, width=section.width, depth=section.depth,
                     sigma_data=sigma_data, rngs=rngs)


# The drifting paper's toy generator (demo notebook) and its denoiser twin.
GENERATOR = Network(
    _build_generator,
    config=dict(width=256, depth=3, init='lecun', init_offset=(),
                init_scale=1.0),
    smoke=dict(width=32, depth=2), validate=_check_generator)
DENOISER = Network(_build_denoiser, config=dict(width=256, depth=3),
                   smoke=dict(width=32, depth=2))
