"""Rows per block of the blocked field evaluation, by backend (BENCHMARKS.md
has the measurements behind the budgets)."""

from __future__ import annotations

import jax

# Elements of one [K, B, T] block of logits: 2^20 float32 (4 MiB) keeps a
# block in a CPU's L2/L3 cache at low D; at higher D the distance matmul
# dominates and wants taller blocks.
_BLOCK_ELEMENTS_LOW_D = 2**20
_BLOCK_ELEMENTS_HIGH_D = 2**25
# On an accelerator: a block's [K, B, T] float32 logits and the few arrays
# of that size the passes hold at once (distances, kernels, affinities)
# may use this fraction of the device memory; beyond it, blocks.
_ACCELERATOR_ARRAYS_PER_BLOCK = 4
_ACCELERATOR_MEMORY_FRACTION = 0.5
_ACCELERATOR_DEFAULT_MEMORY = 16 * 2**30  # when the device does not say


def auto_block_size(n_queries: int, n_targets: int, n_temperatures: int = 1,
                    dim: int = 2, *, backend: str | None = None,
                    memory_bytes: int | None = None) -> int:
  """Rows per block for `drifting_field(block_size=None)`.

  CPU: a power of two with n_temperatures * B * n_targets near 2^20
  elements (2^25 for dim > 16, where taller blocks make the distance
  matmul efficient), at least 8 rows; n_queries (dense) when that is no
  more. BENCHMARKS.md has the measurements behind these budgets.
  Accelerators (any other backend): dense, one block, while its arrays fit
  in half the device memory (`memory_bytes`, else what the device
  reports); else the largest power of two of rows that fits.
  """
  backend = backend or jax.default_backend()
  if backend == 'cpu':
    budget = _BLOCK_ELEMENTS_LOW_D if dim <= 16 else _BLOCK_ELEMENTS_HIGH_D
  else:
    memory = memory_bytes or _device_memory()
    budget = int(_ACCELERATOR_MEMORY_FRACTION * memory) // (
        4 * _ACCELERATOR_ARRAYS_PER_BLOCK)
  rows = budget // max(1, n_temperatures * n_targets)
  if backend != 'cpu' and rows >= n_queries:
    return n_queries  # dense while it fits
  block = 8
  while block * 2 <= rows:
    block *= 2
  return n_queries if block >= n_queries else block


def _device_memory() -> int:
  """Bytes this process's first device may allocate (a fixed guess if
  unknown). Its own: in a multi-host run jax.devices()[0] is process 0's,
  and another process cannot read its memory."""
  stats = jax.local_devices()[0].memory_stats() or {}
  return int(stats.get('bytes_limit', _ACCELERATOR_DEFAULT_MEMORY))
