"""A small convolutional autoencoder: the latent space of latent-space runs.

The drifting release and DMD2 at scale work in SD-VAE latents (32 x 32 x 4
for 256 x 256 images); this is the same idea at the size of the data here:
each of `len(channels)` levels halves the resolution (32 x 32 x 1 ->
8 x 8 x 4 with two levels and 4 latent channels). Encoder: a 3x3 stem,
then per level GroupNorm -> SiLU -> conv3x3 and 2x2 average pooling, and a
3x3 conv to the latent channels. Decoder: the mirror, with nearest
upsampling. Images and latents are flat vectors outside, as everywhere.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx


def _norm(channels: int, rngs: nnx.Rngs) -> nnx.GroupNorm:
  return nnx.GroupNorm(channels, num_groups=math.gcd(8, channels),
                       rngs=rngs)


def latent_shape(image_shape, channels, latent_channels: int):
  """(H / 2^L, W / 2^L, latent_channels) for L = len(channels) levels."""
  h, w, _ = image_shape
  scale = 2 ** len(channels)
  if h % scale or w % scale:
    raise ValueError(f'`autoencoder.channels` has {len(channels)} levels: '
                     f'images {tuple(image_shape)} must have H and W '
                     f'divisible by {scale}.')
  return (h // scale, w // scale, latent_channels)


class ConvAutoencoder(nnx.Module):
  """encode: flat images [N, H W C] -> flat latents [N, h w c];
  decode: the way back."""

  def __init__(self, image_shape, *, channels=(32, 64),
               latent_channels: int = 4, rngs: nnx.Rngs):
    self.image_shape = tuple(image_shape)
    self.latent_shape = latent_shape(image_shape, channels, latent_channels)
    c = self.image_shape[-1]
    self.stem = nnx.Conv(c, channels[0], (3, 3), rngs=rngs)
    widths = (channels[0],) + tuple(channels)
    self.down = nnx.List([
        nnx.List([_norm(a, rngs), nnx.Conv(a, b, (3, 3), rngs=rngs)])
        for a, b in zip(widths[:-1], widths[1:], strict=True)])
    self.to_latent = nnx.Conv(channels[-1], latent_channels, (3, 3),
                              rngs=rngs)
    self.from_latent = nnx.Conv(latent_channels, channels[-1], (3, 3),
                                rngs=rngs)
    back = tuple(reversed(widths))
    self.up = nnx.List([
        nnx.List([_norm(a, rngs), nnx.Conv(a, b, (3, 3), rngs=rngs)])
        for a, b in zip(back[:-1], back[1:], strict=True)])
    self.out_norm = _norm(channels[0], rngs)
    self.out = nnx.Conv(channels[0], c, (3, 3), rngs=rngs)

  def encode(self, x):
    n = x.shape[0]
    h = self.stem(x.reshape((n,) + self.image_shape))
    for norm, conv in self.down:
      h = nnx.avg_pool(conv(nnx.silu(norm(h))), (2, 2), strides=(2, 2))
    return self.to_latent(h).reshape(n, -1)

  def decode(self, z):
    n = z.shape[0]
    h = self.from_latent(z.reshape((n,) + self.latent_shape))
    for norm, conv in self.up:
      h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
      h = conv(nnx.silu(norm(h)))
    return self.out(nnx.silu(self.out_norm(h))).reshape(n, -1)

  def __call__(self, x):
    return self.decode(self.encode(x))
