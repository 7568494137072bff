"""The layout of a run's workdir, in one place.

    workdir/
      config.json       the run's config (written at start-up)
      metrics.jsonl     one JSON record per logged step (`reporting`)
      budget.json       steps and wall seconds spent, with the checkpoints
      samples.npy       the last evaluation's samples; samples.png its plot
      checkpoints/      orbax, one folder per saved step (`checkpoint`)
      teacher/          a DMD teacher trained for this run (a whole run)
      encoder/          a feature encoder trained for this run
      classifier/       the evaluation classifier trained for this run
      lock, lock.owner  the OS lock of the process running it, its pid
                        and host (`lock`)

A prerequisite (teacher, encoder, evaluation classifier) is named in the
config by `TRAIN_HERE` ("train one in this workdir") or by the directory of
an existing one.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket

import filelock
import jax

CONFIG_FILE = 'config.json'
BUDGET_FILE = 'budget.json'
SAMPLES_FILE = 'samples.npy'
CHECKPOINT_DIR = 'checkpoints'
TEACHER_DIR = 'teacher'
ENCODER_DIR = 'encoder'
CLASSIFIER_DIR = 'classifier'
AUTOENCODER_DIR = 'autoencoder'

LOCK_FILE = 'lock'  # the OS lock (`lock`)
OWNER_FILE = 'lock.owner'  # pid and host of the process holding it

TRAIN_HERE = 'train'  # config value: train the prerequisite in the workdir
TEMP_MARKER = '.tmp.'  # in the names of `write_atomic`'s temporary files


def write_json(path: str, obj) -> None:
  """Writes `obj` as indented JSON (process 0 only), atomically: a kill
  leaves either the old file or the new one, never a truncated one."""
  if jax.process_index() == 0:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True))


def write_atomic(path: str, content: str | bytes) -> None:
  """Writes `content` (text or bytes) to a temporary file beside `path`
  (`path` + TEMP_MARKER + pid), then renames it. A write that fails (a full
  disk, a signal) removes the temporary file before the error goes on."""
  tmp = f'{path}{TEMP_MARKER}{os.getpid()}'
  try:
    with open(tmp, 'wb' if isinstance(content, bytes) else 'w') as f:
      f.write(content)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise


def is_temporary(name: str) -> bool:
  """True for the name of `write_atomic`'s temporary file (which readers
  of a folder skip: a writer may be midway, or have been killed)."""
  return TEMP_MARKER in name


@contextlib.contextmanager
def lock(workdir: str):
  """One process per workdir: an OS lock on `workdir/LOCK_FILE` (filelock;
  flock on POSIX) held for the block, with the holder's pid and host in
  `OWNER_FILE` for the message a second process gets. The OS releases the
  lock when its process ends, however it ends (SIGKILL included), so a dead
  run never leaves a stale lock to take over. Only process 0 of a
  multi-process run takes it."""
  if jax.process_index() != 0:
    yield
    return
  path = os.path.join(workdir, LOCK_FILE)
  owner_path = os.path.join(workdir, OWNER_FILE)
  held = filelock.FileLock(path, timeout=0)
  try:
    held.acquire()
  except filelock.Timeout:
    owner = _lock_owner(owner_path)
    raise RuntimeError(
        f'{workdir!r} is in use by pid {owner["pid"]} on host '
        f'{owner["host"]} ({path}); wait for it to finish.') from None
  try:
    write_json(owner_path, {'pid': os.getpid(),
                            'host': socket.gethostname()})
    yield
  finally:
    _remove(owner_path)
    held.release()


def _lock_owner(path) -> dict:
  """{'pid', 'host'} of the lock's holder ('unknown' while it is being
  written, in the instant after the lock was taken)."""
  try:
    with open(path) as f:
      owner = json.load(f)
    return {'pid': int(owner['pid']), 'host': str(owner['host'])}
  except (OSError, ValueError, KeyError, TypeError):
    return {'pid': 'unknown', 'host': 'unknown'}


def _remove(path):
  with contextlib.suppress(FileNotFoundError):
    os.remove(path)


def read_budget(workdir: str) -> dict:
  """Steps and wall seconds spent so far (0 for a fresh workdir)."""
  path = os.path.join(workdir, BUDGET_FILE)
  if not os.path.exists(path):
    return {'steps': 0, 'wall_seconds': 0.0}
  with open(path) as f:
    return json.load(f)


def read_config(workdir: str) -> dict:
  """The config.json of a run's workdir.

  Raises:
    FileNotFoundError naming the workdir when it holds no config.json.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'{workdir!r} has no {CONFIG_FILE}; expected the workdir of a run '
        f'({CONFIG_FILE}, {CHECKPOINT_DIR}/).')
  with open(path) as f:
    return json.load(f)


# Config keys a resumed run may change freely: they decide how long to train
# and what to log, evaluate and keep, not the trajectory so far. Every other
# difference is refused unless `train.allow_config_change` is set. (With
# `optim.schedule='cosine'`, a new `train.steps` re-shapes the schedule
# from the resumed step on.)
FREE_ON_RESUME = ('train.steps', 'train.log_every', 'train.eval_every',
                  'train.checkpoint_every', 'train.keep_checkpoints',
                  'train.progress', 'train.allow_config_change',
                  'train.allow_unfinished', 'train.wandb_project',
                  'train.wandb_mode',
                  'train.divergence_factor', 'eval.', 'mesh.')
# ... except these: `eval.seed` also picks a finite dataset's training split.
PINNED_ON_RESUME = ('eval.seed',)


def flatten(tree: dict, prefix: str = '') -> dict:
  """{'a.b': value} of a nested dict."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(flatten(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


def config_changes(saved: dict, current: dict, renamed=None) -> list[str]:
  """'key: old -> new' for each key that differs and is not free to change
  (`FREE_ON_RESUME`); both configs as JSON-like dicts. Keys only one side
  has are skipped: they were added to (or removed from) the schema since
  the checkpoints were written, and so take their defaults. `renamed`
  ({old dotted key: new}) maps keys of `saved` that have moved since."""
  renamed = renamed or {}
  old = {renamed.get(k, k): v for k, v in flatten(saved).items()}
  new = flatten(json.loads(json.dumps(current)))
  return [f'{k}: {old[k]!r} -> {new[k]!r}'
          for k in sorted(set(old) & set(new))
          if old[k] != new[k] and (
              k in PINNED_ON_RESUME
              or not any(k == f or (f.endswith('.') and k.startswith(f))
                         for f in FREE_ON_RESUME))]
