"""All orbax code: a keep-k, asynchronous checkpoint manager for a run.

Only the trainable state goes in (parameters, optimiser states, EMA and
its update count), under the step number it was saved at; nothing else is
needed to resume, because batches and keys are functions of (seed, step).
A frozen teacher is passed to the step as a constant and never saved
with the student (big_vision's distillation rule). Restoring goes through an
abstract target carrying the *current* shardings, so a checkpoint written on
8 devices restores on 1 and vice versa, and one written on a ('data',
'fsdp') mesh of one shape restores on another.
"""

from __future__ import annotations

import contextlib
import logging as std_logging
import os
import shutil

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from absl import logging

from drift_jax.train import digests


def make_manager(directory: str, *, max_to_keep: int,
                 read_only: bool = False) -> ocp.CheckpointManager:
  """An async CheckpointManager that keeps the newest `max_to_keep` steps."""
  if max_to_keep < 1:
    raise ValueError(f'`train.keep_checkpoints` must be >= 1, got '
                     f'{max_to_keep}.')
  if read_only:
    # What orbax would set itself for a reader, so that it warns about
    # neither; its third warning, that the directory "is read only", means
    # only that this manager will not write (a teacher or an encoder being
    # loaded, not a property of the files), so it is not shown either.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None, save_interval_steps=0, read_only=True,
        create=False)
    with _absl_quiet():
      return ocp.CheckpointManager(
          os.path.abspath(directory), options=options,
          item_handlers=ocp.StandardCheckpointHandler())
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, enable_async_checkpointing=True,
      create=True)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options,
                               item_handlers=ocp.StandardCheckpointHandler())


class _WorkerErrors(std_logging.Filter):
  """Drops the error records, each with its traceback, that orbax's
  worker threads log when an asynchronous save fails (a full disk: four
  records, about 330 lines). `check_errors` and `wait` raise the same
  failure in the main thread as one paragraph naming the step and the
  free space."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    from_orbax = f'{os.sep}orbax{os.sep}' in record.pathname
    return not (from_orbax and record.levelno >= std_logging.ERROR)


def quiet_worker_errors(quiet: bool = True) -> None:
  """Leaves a failed save's report to `check_errors` and `wait` (entry
  points call this; `--traceback` keeps orbax's records)."""
  logger = logging.get_absl_logger()
  for old in [f for f in logger.filters if isinstance(f, _WorkerErrors)]:
    logger.removeFilter(old)
  if quiet:
    logger.addFilter(_WorkerErrors())


@contextlib.contextmanager
def _absl_quiet():
  """absl logging (orbax's) at ERROR within the block."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)
  try:
    yield
  finally:
    logging.set_verbosity(verbosity)


def save(manager, step: int, state) -> None:
  """Starts an asynchronous save; `wait` blocks until it is on disk."""
  manager.save(int(step), args=ocp.args.StandardSave(state), force=True)


def wait(manager, step=None) -> None:
  """Blocks until the pending save (of `step`, if known) is on disk; its
  failure, if any, as one paragraph (`check_errors`)."""
  try:
    manager.wait_until_finished()
  except Exception as error:  # noqa: BLE001
    raise save_failed(manager, error, step) from None


def check_errors(manager, step=None) -> None:
  """Raises at once (one paragraph, not orbax's traceback) when a finished
  asynchronous save (of `step`, if known) failed; cheap, so the runner
  calls it every step."""
  try:
    manager.check_for_errors()
  except Exception as error:  # noqa: BLE001
    raise save_failed(manager, error, step) from None


def save_failed(manager, error, step=None) -> OSError:
  """One paragraph for a save that failed: its step, the free space."""
  directory = str(manager.directory)
  try:
    free = f'{shutil.disk_usage(directory).free / 2**20:.0f} MiB free there'
  except OSError:
    free = 'free space unknown'
  which = 'a checkpoint' if step is None else f'the checkpoint of step {step}'
  return OSError(f'Saving {which} in {directory} failed ({free}: '
                 f'{_one_line(error)}). The checkpoints that completed '
                 'before it are intact; free space or fix the directory and '
                 'rerun to resume from the newest one.')


def abstract_like(state, sharding):
  """ShapeDtypeStructs of `state` with `sharding` (the restore target): one
  sharding for every leaf, or a pytree of them shaped like `state` (each
  array restores straight into its own, whatever mesh wrote it)."""
  if isinstance(sharding, jax.sharding.Sharding):
    sharding = jax.tree.map(lambda _: sharding, state)
  return jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
      state, sharding)


class CheckpointMismatch(ValueError):
  """A checkpoint whose arrays do not fit the run's state (another config)."""


def _shapes(tree) -> dict[str, tuple]:
  """{'a/b/0': shape} of every leaf; path keys as strings, so a restore
  target and a checkpoint's metadata (read back from JSON) compare."""
  def part(key):
    for attr in ('key', 'idx', 'name'):
      if hasattr(key, attr):
        return str(getattr(key, attr))
    return str(key)
  return {'/'.join(part(k) for k in path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _differences(saved, wanted, limit=8) -> list[str]:
  keys = sorted(set(saved) | set(wanted))
  out = [f'{k}: saved {saved.get(k, "absent")}, config wants '
         f'{wanted.get(k, "absent")}' for k in keys
         if saved.get(k) != wanted.get(k)]
  return out[:limit] + ([f'... {len(out) - limit} more'] if len(out) > limit
                        else [])


def move_aside(manager, step, why: str = 'corrupt') -> str:
  """Renames a checkpoint's folder to '<step>.<why>' (orbax then no longer
  lists it); returns the new path."""
  path = os.path.join(str(manager.directory), str(step))
  target = f'{path}.{why}'
  if jax.process_index() == 0 and os.path.exists(path):
    suffix = 0
    while os.path.exists(target):
      suffix += 1
      target = f'{path}.{why}{suffix}'
    os.rename(path, target)
  manager.reload()
  return target


def _restore_one(manager, step, abstract_state):
  """Restores `step`; CheckpointMismatch when its arrays do not fit,
  OSError when they differ from the digest recorded at save (`digests`)."""
  try:
    metadata = manager.item_metadata(step)
  except Exception as error:  # an unreadable checkpoint: corrupt
    raise OSError(f'metadata unreadable: {error}') from error
  if metadata is None:
    raise OSError('no metadata')
  wanted = _shapes(abstract_state)
  saved = _shapes(metadata)
  if saved != wanted:
    raise CheckpointMismatch(
        f'The checkpoint at step {step} in {manager.directory} does not '
        'match this config: ' + '; '.join(_differences(saved, wanted)))
  state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
  recorded = digests.read(manager.directory, step)
  if recorded is not None:
    changed = digests.mismatches(recorded, state)
    if changed:
      raise OSError(f'checksum mismatch: {len(changed)} of {len(recorded)} '
                    f'arrays differ from what was saved ({changed[0]}, ...)')
  return state


def _one_line(error) -> str:
  lines = [line for line in str(error).splitlines() if line.strip()]
  return f'{type(error).__name__}: {lines[0][:200] if lines else ""}'


def restore_latest(manager, abstract_state):
  """(step, state) of the newest checkpoint that restores, or (None, None)
  when there is none.

  A checkpoint that fails to restore (truncated, missing metadata, emptied)
  is moved aside as '<step>.corrupt' with a one-line warning and the next
  older one is tried.

  Raises:
    CheckpointMismatch: a checkpoint was written for another config (its
      arrays' paths or shapes differ); nothing is moved.
    RuntimeError: checkpoints exist but none restores (naming them).
  """
  tried = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      return step, _restore_one(manager, step, abstract_state)
    except CheckpointMismatch:
      raise
    except Exception as error:  # noqa: BLE001  (any failure: try older)
      tried.append(step)
      moved = move_aside(manager, step)
      logging.warning('Checkpoint %d could not be restored (%s); moved to '
                      '%s, trying an older one.', step, _one_line(error),
                      moved)
  if tried:
    raise RuntimeError(f'No checkpoint in {manager.directory} restores: '
                       f'tried steps {tried} (moved aside as *.corrupt).')
  return None, None


def all_finite(state) -> bool:
  """Whether every floating-point array of `state` is finite."""
  leaves = [x for x in jax.tree.leaves(state)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return not leaves or bool(_all_finite(leaves))


@jax.jit
def _all_finite(leaves):
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


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


def saved_steps(directory: str) -> list[int]:
  """The steps of the checkpoint folders in `directory` (not their
  digests, nor folders moved aside as corrupt)."""
  if not os.path.isdir(directory):
    return []
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def saved_keys(directory: str) -> set[str]:
  """Top-level keys of the newest checkpoint's state (what was saved)."""
  manager = make_manager(directory, max_to_keep=1, read_only=True)
  try:
    return set(manager.item_metadata(manager.latest_step()).keys())
  finally:
    manager.close()
