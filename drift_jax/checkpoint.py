"""All orbax code: a keep-k, asynchronous checkpoint manager for a run.

Only the trainable state goes in (parameters, optimiser states, EMA and
its update count), under the step number it was saved at; nothing else is
needed to resume, because batches and keys are functions of (seed, step).
A frozen teacher is passed to the step as a constant and never saved
with the student (big_vision's distillation rule). Restoring goes through an
abstract target carrying the *current* shardings, so a checkpoint written on
8 devices restores on 1 and vice versa.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


def make_manager(directory: str, *, max_to_keep: int,
                 read_only: bool = False) -> ocp.CheckpointManager:
  """An async CheckpointManager that keeps the newest `max_to_keep` steps."""
  if max_to_keep < 1:
    raise ValueError(f'`train.keep_checkpoints` must be >= 1, got '
                     f'{max_to_keep}.')
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, enable_async_checkpointing=True,
      read_only=read_only, create=not read_only)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options,
                               item_handlers=ocp.StandardCheckpointHandler())


def save(manager, step: int, state) -> None:
  """Starts an asynchronous save; `wait` blocks until it is on disk."""
  manager.save(int(step), args=ocp.args.StandardSave(state), force=True)


def wait(manager) -> None:
  manager.wait_until_finished()


def abstract_like(state, sharding):
  """ShapeDtypeStructs of `state` with `sharding` (the restore target)."""
  return jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
      state)


def restore_latest(manager, abstract_state):
  """(step, state) of the newest checkpoint, or (None, None) if none."""
  step = manager.latest_step()
  if step is None:
    return None, None
  state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
  return step, state


def restore_from(directory: str, abstract_state):
  """(step, state) of the newest checkpoint under `directory`.

  Raises:
    FileNotFoundError: naming `directory` when it holds no checkpoint.
  """
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'Checkpoint directory {directory!r} not found.')
  manager = make_manager(directory, max_to_keep=1, read_only=True)
  try:
    step, state = restore_latest(manager, abstract_state)
  finally:
    manager.close()
  if step is None:
    raise FileNotFoundError(f'No checkpoint in {directory!r}.')
  return step, state


def saved_keys(directory: str) -> set[str]:
  """Top-level keys of the newest checkpoint's state (what was saved)."""
  manager = make_manager(directory, max_to_keep=1, read_only=True)
  try:
    return set(manager.item_metadata(manager.latest_step()).keys())
  finally:
    manager.close()
