"""The two types behind every field: a normalisation (the registry's
entries) and a `FieldSpec` resolved for one call (the jit's static
argument)."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp

from drift_jax.fields import kernels as kernels_lib


class Normalization(NamedTuple):
  """A normalisation of the kernel weights (a `NORMALIZATIONS` entry).

  Attributes:
    block_fields: (logk [K, B, T], targets [T, D], w [T], spec, col_lse,
      xb [B, D]) -> per-temperature fields [K, B, D] of one query block.
    evaluate: (x, targets, w, spec, factors) -> (fields [K, N, D],
      distance scale), `factors` None or [K] (1 / temperature scale^2):
      how the blocks are driven (`_blocked_fields`: one pass per block;
      `_bidirectional_fields`: column statistics over all queries first).
    options: {name: default} of the options of its own, which become
      `FieldSpec.options` and keys of the `field` config section; the
      field functions read them as `spec.option(name)`.
    check: options dict -> None, raising ValueError naming the option.
  """
  block_fields: Callable[..., jax.Array] | None
  evaluate: Callable[..., tuple[jax.Array, Any]]
  options: Mapping[str, Any] = types.MappingProxyType({})
  check: Callable[[dict], None] | None = None


@dataclasses.dataclass(frozen=True)
class _Resolved:
  """A `FieldSpec` resolved for one call (kernel object, number of
  positives, block size): static, hashable, the jit's static argument."""
  kernel: kernels_lib.RadialKernel
  temps: tuple[float, ...]
  normalization: str
  mask_self: bool
  n_pos: int
  floor: float
  normalize_distances: bool
  normalize_drift: bool
  block_size: int
  pos_scale: float = 1.0
  neg_scale: float = 1.0
  precision: str = 'highest'
  # Evaluation for an accelerator: one block is called without a scan, and
  # the bidirectional field takes the log-space formulas without the
  # lax.cond (a GPU reads a conditional's predicate back to the host).
  accelerator: bool = False
  sinkhorn_iterations: int = 20
  sinkhorn_tolerance: float = 0.0  # 0: every iteration runs
  # The normalisation's `block_fields` (None for the conservative and
  # Sinkhorn fields), looked up once by `spec.resolve_for_call`, so that the
  # blocked evaluation dispatches without importing the registry.
  block_fields: Callable[..., Any] | None = None
  # The normalisation's own options, (name, value) pairs with the
  # registry's defaults filled in (hashable: this is a static argument).
  options: tuple = ()

  def option(self, name: str):
    """The value of the normalisation's option `name`."""
    return dict(self.options)[name]


def _weights_or_ones(weights, n, dtype):
  if weights is None:
    return jnp.ones((n,), dtype)
  return jnp.asarray(weights, dtype)
