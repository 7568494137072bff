"""Convolutional generator and EDM U-Net denoiser for small images (NNX).

Both take and return *flat* samples [N, H * W * C], like the MLPs, so that
fields, losses and metrics treat images as vectors; they reshape inside.
Conditioning (a class label, and for the generator the CFG scale alpha of
Deng et al. 2026 §3.5) enters every block through adaLN-style feature-wise
scale and shift (Peebles and Xie 2023), initialised to zero so that a fresh
network ignores it. Label `num_classes` means "unconditional".
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from drift_jax.models import edm
from drift_jax.models.network import Network
from drift_jax.theory import noise as noise_lib


def _fourier(t, dim: int):
  """[N] scalars -> [N, dim] sin/cos features at geometric frequencies."""
  freqs = jnp.exp(-math.log(1e3) * jnp.arange(dim // 2) / (dim // 2))
  angles = t[:, None] * freqs[None, :]
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class _Conditioning(nnx.Module):
  """Embedding of (scalar, label): Fourier features of the scalar through a
  2-layer MLP, plus a learned label embedding (row num_classes: none)."""

  def __init__(self, dim: int, num_classes: int, rngs: nnx.Rngs):
    self.dim = dim
    self.num_classes = num_classes
    self.mlp_in = nnx.Linear(dim, dim, rngs=rngs)
    self.mlp_out = nnx.Linear(dim, dim, rngs=rngs)
    self.labels = (nnx.Embed(num_classes + 1, dim, rngs=rngs)
                   if num_classes else None)

  def __call__(self, scalar, labels):
    emb = self.mlp_out(nnx.silu(self.mlp_in(_fourier(scalar, self.dim))))
    if self.labels is not None:
      if labels is None:
        labels = jnp.full(scalar.shape, self.num_classes, jnp.int32)
      emb = emb + self.labels(labels)
    return nnx.silu(emb)


class _Block(nnx.Module):
  """conv3x3 -> GroupNorm -> (1 + scale) h + shift from the conditioning
  -> SiLU. The modulation is zero-initialised (adaLN-Zero style)."""

  def __init__(self, c_in: int, c_out: int, cond_dim: int, rngs: nnx.Rngs):
    self.conv = nnx.Conv(c_in, c_out, (3, 3), rngs=rngs)
    self.norm = nnx.GroupNorm(c_out, num_groups=min(8, c_out),
                              use_scale=False, use_bias=False, rngs=rngs)
    self.modulation = nnx.Linear(cond_dim, 2 * c_out, rngs=rngs,
                                 kernel_init=nnx.initializers.zeros)

  def __call__(self, h, cond):
    h = self.norm(self.conv(h))
    scale, shift = jnp.split(self.modulation(cond), 2, axis=-1)
    return nnx.silu(h * (1 + scale[:, None, None]) + shift[:, None, None])


def _check_image_shape(image_shape, levels: int):
  if len(image_shape) != 3 or min(image_shape) < 1:
    raise ValueError(f'`image_shape` must be (H, W, C), got {image_shape}.')
  h, w, _ = image_shape
  if h % 2**levels or w % 2**levels:
    raise ValueError(f'`image_shape` {image_shape}: H and W must be '
                     f'divisible by 2^{levels} for {levels} resolution '
                     'changes.')


class ConvGenerator(nnx.Module):
  """z [N, noise_dim] -> flat images [N, H W C].

  A linear map to a (H / 2^L, W / 2^L) grid, then L nearest-neighbour
  upsamplings each followed by a conditioned block, and a 3x3 conv to C
  channels. `channels` lists the widths from coarse to fine (L =
  len(channels) - 1). Conditioning: labels [N] (ints) and the CFG scale
  alpha [N] (floats) when `num_classes` > 0 (alpha alone otherwise).
  """

  def __init__(self, noise_dim: int, image_shape, *, channels=(64, 32),
               num_classes: int = 0, cond_dim: int = 64, rngs: nnx.Rngs):
    levels = len(channels) - 1
    _check_image_shape(image_shape, levels)
    self.noise_dim = noise_dim
    self.image_shape = tuple(image_shape)
    h, w, c = self.image_shape
    self.grid = (h // 2**levels, w // 2**levels, channels[0])
    self.proj = nnx.Linear(noise_dim, math.prod(self.grid), rngs=rngs)
    self.cond = _Conditioning(cond_dim, num_classes, rngs)
    self.first = _Block(channels[0], channels[0], cond_dim, rngs)
    self.ups = nnx.List([_Block(a, b, cond_dim, rngs)
                         for a, b in zip(channels[:-1], channels[1:],
                                         strict=True)])
    self.out = nnx.Conv(channels[-1], c, (3, 3), rngs=rngs)

  def __call__(self, z, labels=None, alpha=None):
    if z.ndim != 2 or z.shape[-1] != self.noise_dim:
      raise ValueError(f'Noise `z` must be [N, {self.noise_dim}], got shape '
                       f'{z.shape}.')
    n = z.shape[0]
    alpha = jnp.ones((n,)) if alpha is None else jnp.broadcast_to(alpha,
                                                                  (n,))
    cond = self.cond(alpha, labels)
    h = self.first(self.proj(z).reshape((n,) + self.grid), cond)
    for block in self.ups:
      h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
      h = block(h, cond)
    return self.out(h).reshape(n, -1)

  def sample_noise(self, key, n: int):
    return jax.random.normal(key, (n, self.noise_dim))


class NetBackbone(edm.ImageDenoiser):
  """The EDM backbone F of an image denoiser whose `net(x_img, c_noise,
  labels, states=None)` maps images to images, appending its hidden maps
  to `states` when given (the U-Nets: this one and `adm`)."""

  def net(self, x_img, c_noise, labels, states=None):
    raise NotImplementedError

  def backbone_states(self, x_in, c_noise, labels):
    """The hidden maps `net` keeps, fine-coarse-fine."""
    states = []
    n = x_in.shape[0]
    self.net(x_in.reshape((n,) + self.image_shape), c_noise, labels, states)
    return states

  def backbone(self, x_in, c_noise, labels):
    n = x_in.shape[0]
    f = self.net(x_in.reshape((n,) + self.image_shape), c_noise, labels)
    return f.reshape(n, -1)


class UNetDenoiser(NetBackbone):
  """EDM-preconditioned D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)
  (Karras et al. 2022, Table 1) with a small U-Net F: `channels` from fine
  to coarse, one conditioned block per level down and up, 2x2 average
  pooling, nearest upsampling and skip concatenations. x and the output are
  flat [N, H W C]; labels [N] condition F when `num_classes` > 0.
  """

  def __init__(self, image_shape, *, channels=(32, 64),
               num_classes: int = 0, cond_dim: int = 64,
               sigma_data: float = noise_lib.SIGMA_DATA, rngs: nnx.Rngs):
    levels = len(channels) - 1
    _check_image_shape(image_shape, levels)
    self.image_shape = tuple(image_shape)
    self.sigma_data = sigma_data
    c = self.image_shape[-1]
    self.cond = _Conditioning(cond_dim, num_classes, rngs)
    self.stem = nnx.Conv(c, channels[0], (3, 3), rngs=rngs)
    self.downs = nnx.List([_Block(a, b, cond_dim, rngs)
                           for a, b in zip((channels[0],) + channels[:-1],
                                           channels, strict=True)])
    self.middle = _Block(channels[-1], channels[-1], cond_dim, rngs)
    self.ups = nnx.List([_Block(2 * b, a, cond_dim, rngs)
                         for a, b in zip((channels[0],) + channels[:-1],
                                         channels, strict=True)][::-1])
    self.out = nnx.Conv(channels[0], c, (3, 3), rngs=rngs)

  def net(self, x_img, c_noise, labels, states=None):
    """F on images; appends each block's output to `states` when given."""
    keep = states.append if states is not None else lambda h: None
    cond = self.cond(c_noise, labels)
    h = self.stem(x_img)
    skips = []
    for i, block in enumerate(self.downs):
      if i:
        h = nnx.avg_pool(h, (2, 2), strides=(2, 2))
      h = block(h, cond)
      skips.append(h)
      keep(h)
    h = self.middle(h, cond)
    keep(h)
    for i, block in enumerate(self.ups):
      if i:
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
      h = block(jnp.concatenate([h, skips[-1 - i]], axis=-1), cond)
      keep(h)
    return self.out(h)


# Shared with the ADM U-Net (`adm`).
Conditioning = _Conditioning
check_image_shape = _check_image_shape


def _build_generator(section, *, dim, image_shape, num_classes, rngs):
  del dim
  return ConvGenerator(section.noise_dim, image_shape,
                       channels=tuple(section.channels),
                       num_classes=num_classes, rngs=rngs)


def _build_denoiser(section, *, dim, image_shape, num_classes, rngs,
                    sigma_data):
  del dim
  return UNetDenoiser(image_shape, channels=tuple(section.channels),
                      num_classes=num_classes, sigma_data=sigma_data,
                      rngs=rngs)


GENERATOR = Network(_build_generator, config=dict(channels=(64, 32)),
                    images=True, conditional=True)
DENOISER = Network(_build_denoiser, config=dict(channels=(32, 64)),
                   images=True, conditional=True)
