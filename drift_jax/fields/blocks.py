"""Evaluating a field one block of query rows at a time.

The fields (`fields`, `conservative`) evaluate queries x [N, D] in blocks
of B rows, so that the [B, N + M] pair arrays stay small: `query_blocks`
pads and reshapes the queries, `map_blocks` maps a block function (called
directly when there is one block), `unblock` undoes the padding. Padded
rows carry `valid = False` and must not enter batch statistics.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax.fields import kernels as kernels_lib


def self_pairs(query_ids, n_targets, n_pos):
  """[B, T] mask of (query i, negative i) pairs: target j is neg[j - n_pos]."""
  return (jnp.arange(n_targets) - n_pos)[None, :] == query_ids[:, None]


def weighted_distance_sum(sq, w, ok):
  """sum_ij w_j d_ij over the valid rows `ok` of a block (self pairs in)."""
  d = kernels_lib.safe_sqrt(sq)
  return jnp.sum(jnp.where(ok[:, None], d * w, 0.0))


def query_blocks(x, block):
  """x as [n_blocks, block, D] (zero-padded), query ids, and a valid mask."""
  n, dim = x.shape
  n_blocks = -(-n // block)
  x_blocks = jnp.pad(x, ((0, n_blocks * block - n), (0, 0)))
  x_blocks = x_blocks.reshape(n_blocks, block, dim)
  ids = jnp.arange(n_blocks * block).reshape(n_blocks, block)
  return x_blocks, ids, ids < n  # padded rows must not enter statistics


def map_blocks(fn, blocks):
  """lax.map over blocks; a single block is called directly, so that XLA
  can share its distances between passes (the dense case)."""
  if jax.tree.leaves(blocks)[0].shape[0] == 1:
    return jax.tree.map(lambda a: a[None], fn(jax.tree.map(
        lambda a: a[0], blocks)))
  return lax.map(fn, blocks)


def unblock(fields, n):
  """[n_blocks, K, B, D] -> [K, n, D]."""
  k, dim = fields.shape[1], fields.shape[-1]
  return jnp.moveaxis(fields, 1, 0).reshape(k, -1, dim)[:, :n]


def scan_blocks(fn, init, inputs, direct_single: bool):
  """lax.scan over blocks; with `direct_single` (accelerators) a single
  block is called directly, since a scan of length one is a device loop.
  The CPU keeps the scan, which leaves its measured numbers bit-identical."""
  if direct_single and jax.tree.leaves(inputs)[0].shape[0] == 1:
    carry, out = fn(init, jax.tree.map(lambda a: a[0], inputs))
    return carry, jax.tree.map(lambda a: a[None], out)
  return lax.scan(fn, init, inputs)


def mean_distance(block_sq, x_blocks, valid, targets, w, n, direct_single):
  """S = sum_ij w_j d_ij / (N sum_j w_j), the weighted batch-mean distance
  of the authors' normalisation (Deng App. A.6), accumulated over blocks
  (`block_sq(xb)` -> [B, T] squared distances)."""
  def add_distances(total, inputs):
    xb, ok = inputs
    return total + weighted_distance_sum(block_sq(xb), w, ok), None
  total, _ = scan_blocks(add_distances, jnp.zeros_like(targets[0, 0]),
                         (x_blocks, valid), direct_single)
  return total / (n * jnp.sum(w))


def prepare(x, targets, w, spec):
  """(x_blocks, ids, valid, block_sq, scale) of a field evaluation: the
  query blocks, a block's [B, T] squared distances to the targets at the
  spec's precision, and the distance scale S (1.0 unless the spec
  normalises distances)."""
  x_blocks, ids, valid = query_blocks(x, spec.block_size)

  def block_sq(xb):
    return kernels_lib.pairwise_sq_distances(xb, targets, spec.precision)

  scale = (mean_distance(block_sq, x_blocks, valid, targets, w, x.shape[0],
                         spec.accelerator)
           if spec.normalize_distances else 1.0)
  return x_blocks, ids, valid, block_sq, scale
