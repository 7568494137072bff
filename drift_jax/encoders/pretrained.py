"""Restoring a finished pre-training run (a classifier, an MAE) read-only:
the checks and the restore its loaders share."""

from __future__ import annotations

import os

import jax

from drift_jax.train import checkpoint
from drift_jax.train import workdir as workdir_lib


def restore_finished(directory: str, run, what: str, abstract_state,
                     data_name: str, shape_note: str):
  """(state, budget) of the finished run in `directory`.

  Args:
    directory: the run's workdir; `run` its config.
    what: the network's name in messages ('Classifier', 'MAE').
    abstract_state: the shapes of its state (the method's `abstract_state`).
    data_name, shape_note: the data it is for, named in a mismatch.

  Raises:
    ValueError naming `directory` when the run is unfinished or its
    checkpoint does not match the data.
  """
  budget = workdir_lib.read_budget(directory)
  if budget['steps'] < run.train.steps:
    raise ValueError(f'{what} {directory!r} is unfinished (step '
                     f'{budget["steps"]} of {run.train.steps}); rerun the '
                     'student to finish it, or name a finished one.')
  abstract = checkpoint.abstract_like(
      abstract_state, jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  try:
    _, state = checkpoint.restore_from(
        os.path.join(directory, workdir_lib.CHECKPOINT_DIR), abstract)
  except ValueError as e:  # another number of channels or classes
    raise ValueError(f'{what} {directory!r} does not match data '
                     f'{data_name!r} ({shape_note}): {e}') from e
  return state, budget
