"""A small conv classifier for images: feature encoder and evaluation net.

Two roles, two independently trained copies (`drift_jax.encoders.classifier`):
- the frozen *feature encoder* of feature-space drifting (Deng et al. 2026
  §3.4 use a latent MAE; on 8x8 digits a supervised conv net stands in), whose
  intermediate feature maps `feature_maps(x)` feed the per-feature drifting
  losses (`drift_jax.fields.features`);
- the *evaluation classifier* whose pooled penultimate features
  `embedding(x)` give a Frechet distance and precision/recall, and whose
  predictions give the accuracy of class-conditional samples (an
  Inception-free stand-in for FID, not comparable to FID numbers).

Each stage is conv3x3 -> GroupNorm -> SiLU at one resolution, with 2x2
average pooling between stages. Inputs are flat [N, H W C] in [-1, 1].
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx


class ConvClassifier(nnx.Module):
  """Flat images -> logits [N, num_classes]; `channels` per stage."""

  def __init__(self, image_shape, num_classes: int, *, channels=(32, 64),
               rngs: nnx.Rngs):
    if len(image_shape) != 3:
      raise ValueError(f'`image_shape` must be (H, W, C), got {image_shape}.')
    if num_classes < 2:
      raise ValueError(f'`num_classes` must be >= 2, got {num_classes}.')
    h, w, c = image_shape
    if h % 2**(len(channels) - 1) or w % 2**(len(channels) - 1):
      raise ValueError(f'`image_shape` {image_shape} must be divisible by '
                       f'2^{len(channels) - 1} for channels {channels}.')
    self.image_shape = tuple(image_shape)
    ins = (c,) + tuple(channels[:-1])
    self.convs = nnx.List([nnx.Conv(a, b, (3, 3), rngs=rngs)
                           for a, b in zip(ins, channels, strict=True)])
    self.norms = nnx.List([nnx.GroupNorm(b, num_groups=min(8, b), rngs=rngs)
                           for b in channels])
    self.head = nnx.Linear(channels[-1], num_classes, rngs=rngs)

  def feature_maps(self, x):
    """[N, H W C] -> one [N, H_i, W_i, C_i] map per stage (fine to coarse)."""
    n = x.shape[0]
    if x.ndim != 2 or x.shape[1] != math.prod(self.image_shape):
      raise ValueError(f'`x` must be flat [N, {math.prod(self.image_shape)}]'
                       f' for images {self.image_shape}, got {x.shape}.')
    h = x.reshape((n,) + self.image_shape)
    maps = []
    for i, (conv, norm) in enumerate(zip(self.convs, self.norms,
                                         strict=True)):
      if i:
        h = nnx.avg_pool(h, (2, 2), strides=(2, 2))
      h = nnx.silu(norm(conv(h)))
      maps.append(h)
    return maps

  def embedding(self, x):
    """Globally pooled last feature map [N, C_last] (the metric space)."""
    return jnp.mean(self.feature_maps(x)[-1], axis=(1, 2))

  def __call__(self, x):
    return self.head(self.embedding(x))
