"""A jitted function whose PRNG key is an argument, bound once.

A key closed over by a jitted function is a constant of its program, so two
runs that differ only by their seed compile two programs, and the persistent
compilation cache (keyed by the program's HLO) never serves the second. As
a bound trailing argument the key is data: every seed of one config runs
one executable. The values are the same either way (the key's derivation is
integer arithmetic, exact wherever XLA evaluates it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


class KeyedJit:
  """`jax.jit(fn, **jit_kwargs)` called as `f(*args)` = `fn(*args, key)`.

  `lower` and `_cache_size` pass through to the jitted function, so
  callers that compile ahead of time or count compilations keep working.
  """

  def __init__(self, fn: Callable[..., Any], key: jax.Array, **jit_kwargs):
    self._jitted = jax.jit(fn, **jit_kwargs)
    self._key = key

  def __call__(self, *args):
    return self._jitted(*args, self._key)

  def lower(self, *args):
    return self._jitted.lower(*args, self._key)

  def _cache_size(self) -> int:
    return self._jitted._cache_size()  # noqa: SLF001 (jax's own counter)
