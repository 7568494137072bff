"""What keeps a run's workdir trustworthy: checkpoints only of finite
weights, `budget.json` only for checkpoints that completed, a divergence
guard, and the config check on resume.

The runner's loop calls `Checkpoints.save` at its checkpoint steps and at a
signal (`preemption`), and `DivergenceGuard.check` at its logging steps.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import time

import jax

from drift_jax.train import checkpoint
from drift_jax.train import digests
from drift_jax.train import workdir as workdir_lib


def newest_good(manager) -> str:
  """The newest checkpoint of the run, as words for an error message (every
  checkpoint this code wrote was checked finite before it was saved)."""
  step = manager.latest_step()
  if step is None:
    return 'there is no checkpoint yet'
  return f'the newest good checkpoint is step {step} in {manager.directory}'


class Checkpoints:
  """Saves through an orbax manager and keeps `budget.json` honest.

  A save first checks the state finite (FloatingPointError otherwise,
  naming the newest good checkpoint). `budget.json` records a step only
  once its asynchronous save has completed: the budget of a save is
  written when the next save starts (orbax waits for the previous one
  there anyway) or at `flush`. It keeps each kept step's wall seconds, so a
  run that falls back to an older checkpoint resumes its clock too.
  """

  def __init__(self, manager, workdir: str, on_recorded=None):
    self.manager = manager
    self._path = os.path.join(workdir, workdir_lib.BUDGET_FILE)
    self._budget = workdir_lib.read_budget(workdir)
    self._pending = None
    # Called once budget.json names a completed save (a remote workdir's
    # push, `mirror`).
    self._on_recorded = on_recorded

  def save(self, step: int, state, wall_seconds: float) -> None:
    if not checkpoint.all_finite(state):
      raise FloatingPointError(
          f'The weights at step {step} are not finite; not saved, the run '
          f'stops ({newest_good(self.manager)}).')
    self.flush()
    # What this checkpoint must contain, from the state in memory: every
    # process computes it (it gathers arrays sharded across processes),
    # process 0 records it.
    digest = digests.of_state(state)
    if jax.process_index() == 0:
      # An older digest of the same step number must not vouch for it.
      digests.forget(self.manager.directory,
                     keep=[s for s in self.manager.all_steps() if s != step])
    else:
      digest = None
    checkpoint.save(self.manager, step, state)
    self._pending = (step, wall_seconds, digest)

  @property
  def pending_step(self):
    """The step of the save in flight (None when there is none)."""
    return None if self._pending is None else self._pending[0]

  def flush(self) -> None:
    """Waits for the pending save, then records its digest and its step in
    budget.json (in that order: budget.json names only checkpoints that
    completed and can be verified)."""
    checkpoint.wait(self.manager, self.pending_step)
    if self._pending is None:
      return
    step, wall, digest = self._pending
    self._pending = None
    kept = {str(s) for s in self.manager.all_steps()}
    history = {k: v for k, v in self._budget.get('history', {}).items()
               if k in kept}
    history[str(step)] = wall
    try:  # the save's own files: a full disk is reported as the save's
      if digest is not None:
        workdir_lib.write_json(digests.path(self.manager.directory, step),
                               digest)
        digests.forget(self.manager.directory, keep=kept)
      workdir_lib.write_json(self._path, {'steps': step, 'wall_seconds': wall,
                                          'history': history})
    except OSError as error:
      raise checkpoint.save_failed(self.manager, error, step) from None
    self._budget = {'steps': step, 'wall_seconds': wall,
                    'history': history}
    if self._on_recorded is not None:
      self._on_recorded()

  def discard_from(self, step: int) -> str:
    """After a rejected loss: moves aside, as '<s>.diverged', every
    checkpoint at `step` or later (their weights produced the rejected
    loss, or followed them), with their digests and budget.json entries;
    returns the newest good checkpoint in words."""
    self.flush()
    directory = str(self.manager.directory)
    for bad in checkpoint.saved_steps(directory):
      if bad >= step:
        checkpoint.move_aside(self.manager, bad, 'diverged')
    kept = checkpoint.saved_steps(directory)
    if jax.process_index() == 0:
      digests.forget(directory, keep=kept)
      history = {k: v for k, v in self._budget.get('history', {}).items()
                 if int(k) in kept}
      if kept:
        wall = history.get(str(kept[-1]), self._budget.get('wall_seconds'))
        self._budget = {'steps': kept[-1], 'wall_seconds': wall,
                        'history': history}
        workdir_lib.write_json(self._path, self._budget)
      elif os.path.exists(self._path):
        os.remove(self._path)
    return newest_good(self.manager)

  def wall_seconds_at(self, step: int) -> float:
    """Wall seconds the run had spent when it saved `step` (0 for step 0),
    from the budget.json read at start-up."""
    if not step:
      return 0.0
    history = self._budget.get('history', {})
    if str(step) in history:
      return float(history[str(step)])
    # Older budget files keep only the newest step.
    return float(self._budget['wall_seconds'])


class DivergenceGuard:
  """Stops a run whose loss leaves its running median far behind.

  `factor` 0 turns it off. The median is over the last `window` logged
  values (at least `warmup` of them before the guard acts: 3, so that a
  run logging every 100 steps, the default, is guarded from step 400 on;
  at 5 a good 300-step run continued at lr 3 was not, and saved a loss
  403 times its median), of |loss|, so
  losses that change sign do not trip it; while the median is 0 (a loss
  that reached exactly zero) it does not act. The runner also checks, but
  does not record, the loss of a step it is about to save without having
  logged it, so no diverged state is ever saved.
  """

  def __init__(self, factor: float, window: int = 50, warmup: int = 3):
    self._factor, self._window, self._warmup = factor, window, warmup
    self._history = []

  def ratio(self, loss: float) -> float:
    """|loss| over the running median of the logged |loss| (0 during the
    warm-up or while the median is 0): what `check` compares with the
    factor."""
    if len(self._history) < self._warmup:
      return 0.0
    median = statistics.median(self._history[-self._window:])
    return abs(loss) / median if median > 0 else 0.0

  def record(self, loss: float) -> None:
    self._history.append(abs(loss))

  def replay(self, records, start: int) -> None:
    """Records the logged losses of metrics.jsonl up to the resumed step
    `start`, so a resumed run is guarded from its first step as the
    uninterrupted one was (a fresh history would be in its warm-up: a
    run resumed at lr 3 blew up at the first logging step unchecked).
    Every process reads the same shared file, so all decide alike."""
    for record in records:
      loss = record.get('train/loss')
      if loss is not None and record['step'] <= start and math.isfinite(
          loss):
        self.record(loss)

  def check(self, step: int, loss: float, *, record: bool = True) -> None:
    """Diverged if the loss logged at `step` is non-finite or above the
    factor times the running median; else records it (with `record`)."""
    if not math.isfinite(loss):
      raise Diverged(f'train/loss is {loss} at step {step}', step)
    if self._factor and self.ratio(loss) > self._factor:
      median = statistics.median(self._history[-self._window:])
      raise Diverged(
          f'train/loss = {loss:.3g} at step {step} is more than '
          f'train.divergence_factor = {self._factor:g} times its running '
          f'median {median:.3g} (--config.train.divergence_factor=0 turns '
          f'the guard off)', step)
    if record:
      self.record(loss)


class Diverged(FloatingPointError):
  """A loss the run must not go on from, logged at `step`: the loss of the
  weights of step `step - 1` (a step logs the loss before its update)."""

  def __init__(self, reason: str, step: int):
    super().__init__(reason)
    self.reason, self.step = reason, step


class ConfigChanged(ValueError):
  """A resumed run's config differs from its workdir's config.json."""


def check_resume_config(workdir: str, config: dict, renamed=None
                        ) -> list[str]:
  """Compares `config` with the config.json of a workdir that holds
  checkpoints, before anything is written.

  Returns the changed keys (empty for a fresh workdir or an unchanged
  config). With `train.allow_config_change` they are returned and nothing
  is written: the runner keeps the old config (`keep_old_config`) and
  writes the new one only once a checkpoint has restored under it, so a
  change that then fails (a network of another shape) leaves the workdir
  as it was. Without it a change outside
  `workdir.FREE_ON_RESUME` raises ConfigChanged listing the keys. Keys
  of the old config that have moved are compared under their new names
  (`renamed`: {old dotted key: new}, `methods.renamed_keys()`).
  """
  config_path = os.path.join(workdir, workdir_lib.CONFIG_FILE)
  checkpoints = os.path.join(workdir, workdir_lib.CHECKPOINT_DIR)
  has_checkpoints = os.path.isdir(checkpoints) and any(
      name.isdigit() for name in os.listdir(checkpoints))
  if not (has_checkpoints and os.path.isfile(config_path)):
    return []
  changes = workdir_lib.config_changes(workdir_lib.read_config(workdir),
                                       config, renamed)
  if not changes:
    return []
  if not config['train']['allow_config_change']:
    raise ConfigChanged(
        f'{workdir!r} holds checkpoints of a run with another config; '
        f'changed: {"; ".join(changes)}. Use a new workdir, or set '
        '--config.train.allow_config_change=True to continue from them '
        'anyway (the old config.json is kept beside the new one).')
  return changes


def keep_old_config(workdir: str) -> None:
  """Copies config.json to `config.before.<time>.json` (an accepted
  change is about to replace it)."""
  stamp = time.strftime('%Y%m%d-%H%M%S')
  shutil.copyfile(os.path.join(workdir, workdir_lib.CONFIG_FILE),
                  os.path.join(workdir, f'config.before.{stamp}.json'))
