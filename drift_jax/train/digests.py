"""Checksums of saved checkpoints: what a checkpoint should contain.

A flipped bit in an array file can still parse, and then a run resumes
from changed weights without a word. So every save records the SHA-256 of
each array of the state it saves (its dtype, shape and bytes, taken from
the state in memory), written beside the checkpoint as `<step>.digest.json`
once the asynchronous save has completed (`guards.Checkpoints.flush`), and
every restore compares the restored arrays with it
(`checkpoint.restore_latest`): a mismatch is a corrupt checkpoint, moved
aside like any other, and the next older one is restored. A checkpoint
without a digest (written before this module) is restored unchecked.
Orbax has no integrity check of its own for array data, hence this module.
"""

from __future__ import annotations

import hashlib
import json
import os

import jax
import numpy as np
from jax.experimental import multihost_utils

SUFFIX = '.digest.json'


def path(directory: str, step: int) -> str:
  """Where the digest of `step` in checkpoint `directory` lives (orbax
  lists only integer-named folders there, so it ignores the file)."""
  return os.path.join(str(directory), f'{int(step)}{SUFFIX}')


def _host_array(leaf) -> np.ndarray:
  """The array's whole value on this host, whatever its sharding: a
  replicated array's local copy, or a sharded one's shards gathered from
  every process (`process_allgather`, a collective: every process digests
  the same state). One shard would not do: it depends on the mesh, so a
  checkpoint restored on another mesh (or a teacher restored on one
  device) would read as corrupt, and processes would disagree."""
  if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
    if leaf.sharding.is_fully_replicated:
      return np.asarray(leaf.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
  return np.asarray(leaf)


def of_state(state) -> dict[str, str]:
  """{array path: sha256 of dtype, shape and bytes} of a state pytree.
  Every process of a run must call it together (`_host_array`)."""
  out = {}
  for key, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
    array = np.ascontiguousarray(_host_array(leaf))
    digest = hashlib.sha256(f'{array.dtype.str}{array.shape}'.encode())
    digest.update(array.tobytes())
    out[jax.tree_util.keystr(key)] = digest.hexdigest()
  return out


def read(directory: str, step: int) -> dict[str, str] | None:
  """The recorded digest of `step` (None: none recorded, or unreadable,
  which leaves the checkpoint unchecked rather than condemned)."""
  try:
    with open(path(directory, step)) as f:
      recorded = json.load(f)
  except (OSError, ValueError):
    return None
  return recorded if isinstance(recorded, dict) else None


def mismatches(recorded: dict[str, str], state) -> list[str]:
  """The array paths whose restored values differ from the record."""
  found = of_state(state)
  return sorted(k for k in set(recorded) | set(found)
                if recorded.get(k) != found.get(k))


def forget(directory: str, keep=None) -> None:
  """Removes the digests of steps not in `keep` (all when None)."""
  if not os.path.isdir(str(directory)):
    return
  keep = {str(int(s)) for s in (keep or ())}
  for name in os.listdir(str(directory)):
    if name.endswith(SUFFIX) and name[:-len(SUFFIX)] not in keep:
      try:
        os.remove(os.path.join(str(directory), name))
      except FileNotFoundError:
        pass
