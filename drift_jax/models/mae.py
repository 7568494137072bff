"""A masked-autoencoder ResNet: the drifting paper's feature encoder, small
(Deng et al. 2026 §3.4 and App. A.3; masked image modelling after He et al.
2022, with a convolutional encoder and a U-Net-style decoder).

Encoder: a 3x3 stem without downsampling, then four stages of GroupNorm
basic blocks (two 3x3 convs; a 1x1 projection where the stride or the width
changes) at widths C, 2C, 4C, 8C, stride 2 at the start of every stage after
the first. Decoder: from the coarsest stage up, each step resizes to the
next finer stage, concatenates its output (skip connection) and applies a
conv block; a 3x3 conv maps to the image channels.

Pre-training: `patch` x `patch` patches are masked at `mask_ratio` (set to
0, the image's mid-grey in [-1, 1]) and the loss is the mean squared error
on the masked pixels only (`masked_mse`). An optional classification head
on the pooled last stage gives the paper's fine-tune term.

`feature_maps(x)` returns, fine to coarse, the output of every second block
of each stage and each stage's output (no duplicates): the maps the
multi-scale feature sets (`drift_jax.fields.features.feature_sets`) read.
Inputs are flat [N, H W C] in [-1, 1] like every network here.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


def _group_norm(channels, rngs):
  return nnx.GroupNorm(channels, num_groups=min(8, channels), rngs=rngs)


class BasicBlock(nnx.Module):
  """x -> SiLU(GN(conv3x3)) -> GN(conv3x3) + shortcut -> SiLU."""

  def __init__(self, c_in: int, c_out: int, stride: int, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(c_in, c_out, (3, 3), strides=stride, rngs=rngs)
    self.norm1 = _group_norm(c_out, rngs)
    self.conv2 = nnx.Conv(c_out, c_out, (3, 3), rngs=rngs)
    self.norm2 = _group_norm(c_out, rngs)
    self.project = (nnx.Conv(c_in, c_out, (1, 1), strides=stride, rngs=rngs)
                    if stride != 1 or c_in != c_out else None)

  def __call__(self, x):
    h = nnx.silu(self.norm1(self.conv1(x)))
    h = self.norm2(self.conv2(h))
    skip = x if self.project is None else self.project(x)
    return nnx.silu(h + skip)


class MAEResNet(nnx.Module):
  """Masked-autoencoder ResNet on flat images [N, H W C]."""

  def __init__(self, image_shape, *, width: int = 16,
               blocks=(1, 1, 1, 1), num_classes: int = 0, rngs: nnx.Rngs):
    if len(image_shape) != 3 or min(image_shape) < 1:
      raise ValueError(f'`image_shape` must be (H, W, C), got {image_shape}.')
    if not blocks or min(blocks) < 1 or width < 1:
      raise ValueError(f'`mae.blocks` must be >= 1 per stage and '
                       f'`mae.width` >= 1, got {tuple(blocks)}, {width}.')
    self.image_shape = tuple(int(v) for v in image_shape)
    c = self.image_shape[-1]
    widths = [width * 2**i for i in range(len(blocks))]
    self.widths = tuple(widths)
    self.blocks_per_stage = tuple(blocks)
    self.stem = nnx.Conv(c, width, (3, 3), rngs=rngs)
    stages, c_in = [], width
    for i, (c_out, count) in enumerate(zip(widths, blocks, strict=True)):
      stage = []
      for j in range(count):
        stride = 2 if i > 0 and j == 0 else 1
        stage.append(BasicBlock(c_in, c_out, stride, rngs))
        c_in = c_out
      stages.append(nnx.List(stage))
    self.stages = nnx.List(stages)
    # Decoder: coarse to fine, each step [up(h), skip] -> conv block.
    self.decoder = nnx.List([
        BasicBlock(widths[i + 1] + widths[i], widths[i], 1, rngs)
        for i in reversed(range(len(widths) - 1))])
    self.out = nnx.Conv(widths[0], c, (3, 3), rngs=rngs)
    self.head = (nnx.Linear(widths[-1], num_classes, rngs=rngs)
                 if num_classes else None)

  def _images(self, x):
    n = x.shape[0]
    if x.ndim != 2 or x.shape[1] != math.prod(self.image_shape):
      raise ValueError(f'`x` must be flat [N, {math.prod(self.image_shape)}]'
                       f' for images {self.image_shape}, got {x.shape}.')
    return x.reshape((n,) + self.image_shape)

  def _encode(self, images):
    """(stage outputs, the feature maps) of images [N, H, W, C]."""
    h = self.stem(images)
    stage_outputs, maps = [], []
    for stage in self.stages:
      for j, block in enumerate(stage):
        h = block(h)
        if j % 2 == 1 and j != len(stage) - 1:  # every second block
          maps.append(h)
      stage_outputs.append(h)
      maps.append(h)
    return stage_outputs, maps

  def feature_maps(self, x):
    """[N, H W C] -> [N, H_i, W_i, C_i] maps, fine to coarse."""
    return self._encode(self._images(x))[1]

  def embedding(self, x):
    """The pooled last stage [N, 8C]."""
    return jnp.mean(self.feature_maps(x)[-1], axis=(1, 2))

  def reconstruct(self, x):
    """The decoder's image [N, H W C] from (masked) flat images x."""
    images = self._images(x)
    outputs, _ = self._encode(images)
    h = outputs[-1]
    for block, skip in zip(self.decoder, reversed(outputs[:-1]),
                           strict=True):
      up = jax.image.resize(h, skip.shape[:3] + h.shape[3:], 'nearest')
      h = block(jnp.concatenate([up, skip], axis=-1))
    return self.out(h).reshape(x.shape[0], -1)

  def logits(self, x):
    if self.head is None:
      raise ValueError('This MAE has no classification head (num_classes=0).')
    return self.head(self.embedding(x))


def patch_mask(key, n: int, image_shape, patch: int, ratio: float):
  """[N, H W C] mask, 1 on masked pixels: exactly round(ratio P) of the P
  patch x patch patches of each image, chosen uniformly."""
  h, w, c = image_shape
  if h % patch or w % patch:
    raise ValueError(f'`mae.patch` {patch} does not tile images {h}x{w}.')
  gh, gw = h // patch, w // patch
  count = gh * gw
  masked = int(round(ratio * count))
  scores = jax.random.uniform(key, (n, count))
  ranks = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)
  grid = (ranks < masked).astype(jnp.float32).reshape(n, gh, gw)
  pixels = jnp.repeat(jnp.repeat(grid, patch, axis=1), patch, axis=2)
  return jnp.broadcast_to(pixels[..., None], (n, h, w, c)).reshape(n, -1)


def masked_mse(reconstruction, target, mask):
  """Mean squared error over the masked pixels only (He et al. 2022)."""
  return jnp.sum(mask * (reconstruction - target)**2) / jnp.maximum(
      jnp.sum(mask), 1.0)
