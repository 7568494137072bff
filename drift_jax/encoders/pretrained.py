"""Restoring a finished pre-training run (a classifier, an MAE) read-only:
the checks and the restore its loaders share."""

from __future__ import annotations

import os

import jax
import ml_collections

from drift_jax.train import checkpoint
from drift_jax.train import workdir as workdir_lib


def read_run(directory: str, method_name: str, missing: str,
             wrong_method: str) -> ml_collections.ConfigDict:
  """The config of the `method_name` run in `directory`.

  Raises:
    FileNotFoundError `missing` when `directory` holds no run's config;
    ValueError `wrong_method`, its '{method}' replaced by the run's
    method, when it is a run of another method.
  """
  try:
    run = ml_collections.ConfigDict(workdir_lib.read_config(directory))
  except FileNotFoundError as e:
    raise FileNotFoundError(missing) from e
  if run.method != method_name:
    raise ValueError(wrong_method.replace('{method}', repr(run.method)))
  return run


def check_finished(directory: str, run, what: str,
                   allow_unfinished: bool = False) -> dict:
  """The budget of the run in `directory` (config `run`), refused with one
  line naming its step and its config's length when it stopped short of
  its `train.steps`, unless `allow_unfinished`."""
  budget = workdir_lib.read_budget(directory)
  if budget['steps'] < run.train.steps and not allow_unfinished:
    raise ValueError(f'{what} {directory!r} is unfinished (step '
                     f'{budget["steps"]} of its train.steps='
                     f'{run.train.steps}); finish it (rerun its command), '
                     'name a finished one, or set '
                     'train.allow_unfinished=True to use it as it is.')
  return budget


def restore_finished(directory: str, run, what: str, abstract_state,
                     data_name: str, shape_note: str,
                     allow_unfinished: bool = False):
  """(state, budget) of the finished run in `directory`.

  Args:
    directory: the run's workdir; `run` its config.
    what: the network's name in messages ('Classifier', 'MAE').
    abstract_state: the shapes of its state (the method's `abstract_state`).
    data_name, shape_note: the data it is for, named in a mismatch.
    allow_unfinished: accept a run that stopped before its train.steps.

  Raises:
    ValueError naming `directory` when the run is unfinished or its
    checkpoint does not match the data.
  """
  budget = check_finished(directory, run, what, allow_unfinished)
  # On this process's first device: a process of a multi-host run cannot
  # place arrays on another's (jax.devices()[0] belongs to process 0).
  abstract = checkpoint.abstract_like(
      abstract_state,
      jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
  try:
    _, state = checkpoint.restore_from(
        os.path.join(directory, workdir_lib.CHECKPOINT_DIR), abstract)
  except ValueError as e:  # another number of channels or classes
    raise ValueError(f'{what} {directory!r} does not match data '
                     f'{data_name!r} ({shape_note}): {e}') from e
  return state, budget
