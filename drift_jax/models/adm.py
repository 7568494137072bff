"""The EDM-ADM U-Net denoiser with self-attention (`model.denoiser.name='adm'`).

The architecture of EDM's ImageNet-64 network (Karras et al. 2022, config
F; after Dhariwal and Nichol's ADM), which DMD2 distils on ImageNet-64
(Yin et al. 2024b: 192 channels, multipliers 1, 2, 3, 4, three residual
blocks a resolution, attention at 32, 16 and 8; about 296M parameters):

- residual blocks GroupNorm -> SiLU -> conv3x3 -> GroupNorm, scaled and
  shifted by the noise-and-class embedding (adaptive GroupNorm, the
  modulation zero-initialised) -> SiLU -> conv3x3 (zero-initialised), plus
  the input through a 1x1 conv where the width changes;
- multi-head self-attention over the H W positions (64 channels a head)
  after every residual block at the listed resolutions and in the middle;
- between levels, 2x2 average pooling or nearest upsampling followed by a
  residual block at the new resolution (ADM's `resblock_updown`); every
  encoder output is a skip the decoder concatenates.

Flat samples in and out [N, H W C], EDM-preconditioned (`edm`), as the
small U-Net (`conv.UNetDenoiser`), whose conditioning it shares.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from drift_jax.models import conv
from drift_jax.models.network import Network
from drift_jax.theory import noise as noise_lib


def _norm(channels: int, rngs: nnx.Rngs) -> nnx.GroupNorm:
  """GroupNorm of 32 groups (ADM's), fewer where 32 does not divide."""
  return nnx.GroupNorm(channels, num_groups=math.gcd(32, channels),
                       rngs=rngs)


class ResBlock(nnx.Module):
  """x + F(x) with adaptive GroupNorm (the embedding's scale and shift)."""

  def __init__(self, c_in: int, c_out: int, cond_dim: int, rngs: nnx.Rngs):
    self.norm1 = _norm(c_in, rngs)
    self.conv1 = nnx.Conv(c_in, c_out, (3, 3), rngs=rngs)
    self.norm2 = _norm(c_out, rngs)
    self.modulation = nnx.Linear(cond_dim, 2 * c_out, rngs=rngs,
                                 kernel_init=nnx.initializers.zeros)
    self.conv2 = nnx.Conv(c_out, c_out, (3, 3), rngs=rngs,
                          kernel_init=nnx.initializers.zeros)
    self.skip = (nnx.Conv(c_in, c_out, (1, 1), rngs=rngs)
                 if c_in != c_out else None)

  def __call__(self, x, cond):
    h = self.conv1(nnx.silu(self.norm1(x)))
    scale, shift = jnp.split(self.modulation(cond), 2, axis=-1)
    h = self.norm2(h) * (1 + scale[:, None, None]) + shift[:, None, None]
    h = self.conv2(nnx.silu(h))
    return (x if self.skip is None else self.skip(x)) + h


class Attention(nnx.Module):
  """x + proj(softmax(q k^T / sqrt(d)) v) over the H W positions."""

  def __init__(self, channels: int, head_channels: int, rngs: nnx.Rngs):
    self.heads = max(channels // head_channels, 1)
    self.norm = _norm(channels, rngs)
    self.qkv = nnx.Linear(channels, 3 * channels, rngs=rngs)
    self.proj = nnx.Linear(channels, channels, rngs=rngs,
                           kernel_init=nnx.initializers.zeros)

  def __call__(self, x, cond=None):
    del cond
    n, h, w, c = x.shape
    qkv = self.qkv(self.norm(x)).reshape(n, h * w, 3, self.heads,
                                         c // self.heads)
    q, k, v = (qkv[:, :, i] for i in range(3))
    out = jax.nn.dot_product_attention(q, k, v)
    return x + self.proj(out.reshape(n, h, w, c))


class Resample(nnx.Module):
  """2x2 average pooling ('down') or nearest upsampling ('up'), then a
  residual block at the new resolution."""

  def __init__(self, channels: int, cond_dim: int, direction: str,
               rngs: nnx.Rngs):
    self.direction = direction
    self.block = ResBlock(channels, channels, cond_dim, rngs)

  def __call__(self, x, cond):
    if self.direction == 'down':
      x = nnx.avg_pool(x, (2, 2), strides=(2, 2))
    else:
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return self.block(x, cond)


class ADMDenoiser(conv.NetBackbone):
  """EDM-preconditioned D(x, sigma) with the ADM U-Net F (module doc);
  its hidden states are each level's output, down, middle and up."""

  def __init__(self, image_shape, *, channels: int = 192,
               mults=(1, 2, 3, 4), blocks: int = 3,
               attention=(32, 16, 8), head_channels: int = 64,
               num_classes: int = 0,
               sigma_data: float = noise_lib.SIGMA_DATA, rngs: nnx.Rngs):
    levels = len(mults) - 1
    conv.check_image_shape(image_shape, levels)
    self.image_shape = tuple(image_shape)
    self.sigma_data = sigma_data
    height, _, c = self.image_shape
    widths = [channels * m for m in mults]
    cond_dim = 4 * channels
    self.cond = conv.Conditioning(cond_dim, num_classes, rngs)
    self.stem = nnx.Conv(c, channels, (3, 3), rngs=rngs)

    def stage(c_in, c_out, resolution):
      layers = [ResBlock(c_in, c_out, cond_dim, rngs)]
      if resolution in attention:
        layers.append(Attention(c_out, head_channels, rngs))
      return nnx.List(layers)

    downs, skips, width = [], [channels], channels
    for level, out in enumerate(widths):
      resolution = height // 2**level
      for _ in range(blocks):
        downs.append(stage(width, out, resolution))
        width = out
        skips.append(width)
      if level < levels:
        downs.append(nnx.List([Resample(width, cond_dim, 'down', rngs)]))
        skips.append(width)
    self.downs = nnx.List(downs)
    self.middle = nnx.List([ResBlock(width, width, cond_dim, rngs),
                            Attention(width, head_channels, rngs),
                            ResBlock(width, width, cond_dim, rngs)])
    ups = []
    for level, out in reversed(list(enumerate(widths))):
      resolution = height // 2**level
      for _ in range(blocks + 1):
        ups.append(stage(width + skips.pop(), out, resolution))
        width = out
      if level:
        ups.append(nnx.List([Resample(width, cond_dim, 'up', rngs)]))
    self.ups = nnx.List(ups)
    self.out_norm = _norm(width, rngs)
    self.out = nnx.Conv(width, c, (3, 3), rngs=rngs,
                        kernel_init=nnx.initializers.zeros)

  def net(self, x_img, c_noise, labels, states=None):
    """F on images; appends each level's last output to `states`."""
    keep = states.append if states is not None else lambda h: None
    cond = self.cond(c_noise, labels)
    h = self.stem(x_img)
    skips = [h]
    for stage in self.downs:
      if isinstance(stage[0], Resample):
        keep(h)
      for layer in stage:
        h = layer(h, cond)
      skips.append(h)
    for layer in self.middle:
      h = layer(h, cond)
    keep(h)
    for stage in self.ups:
      if isinstance(stage[0], Resample):
        keep(h)
      else:
        h = jnp.concatenate([h, skips.pop()], axis=-1)
      for layer in stage:
        h = layer(h, cond)
    return self.out(nnx.silu(self.out_norm(h)))


def _build_denoiser(section, *, dim, image_shape, num_classes, rngs,
                    sigma_data):
  del dim
  return ADMDenoiser(image_shape, channels=section.adm_channels,
                     mults=tuple(section.adm_mults),
                     blocks=section.adm_blocks,
                     attention=tuple(section.adm_attention),
                     head_channels=section.adm_head_channels,
                     num_classes=num_classes, sigma_data=sigma_data,
                     rngs=rngs)


def _validate(section) -> None:
  for key in ('adm_channels', 'adm_blocks', 'adm_head_channels'):
    if section[key] < 1:
      raise ValueError(f'`model.denoiser.{key}` must be >= 1, got '
                       f'{section[key]}.')
  if not section.adm_mults or min(section.adm_mults) < 1:
    raise ValueError('`model.denoiser.adm_mults` must be positive '
                     f'multipliers, got {tuple(section.adm_mults)}.')


# DMD2's ImageNet-64 teacher by default; `runlocal` a seconds-long one.
DENOISER = Network(
    _build_denoiser,
    config=dict(adm_channels=192, adm_mults=(1, 2, 3, 4), adm_blocks=3,
                adm_attention=(32, 16, 8), adm_head_channels=64),
    smoke=dict(adm_channels=16, adm_mults=(1, 2), adm_blocks=1,
               adm_attention=(4,), adm_head_channels=8),
    images=True, conditional=True, validate=_validate)
