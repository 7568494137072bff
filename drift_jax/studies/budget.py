"""Compute a study allots: calibrated seconds per step, and a budget split
into steps over a run and the prerequisites it trains itself.

Names: the *charged* seconds of a run are what the study allots it
(calibrated steps x calibrated seconds per step, every prerequisite it
trains included); its *wall* seconds are what the clock measured while it
ran (compilation, evaluation and a loaded machine included). Budgets are
charged seconds; wall seconds are only reported.

The harness knows no method: a method's `prerequisites(config)` declares,
for each run it trains first, the config key of that run's length
(`length_key`, e.g. a teacher's steps) and the key of its share of the
budget (`share_key`, one of the method's own search axes).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import shutil
import time
from collections.abc import Mapping

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.studies import provenance
from drift_jax.studies import store
from drift_jax.studies import suite as suite_lib
from drift_jax.train import prerequisites
from drift_jax.train import runner

# Lengths the calibration trains prerequisites for: their quality costs
# nothing, only their seconds per step are measured.
CALIBRATION_PREREQUISITE_STEPS = 2


def steps_for_budget(seconds: float, seconds_per_step: float,
                     multiple: int = 1) -> int:
  """The most steps (a multiple of `multiple`, at least one multiple) whose
  calibrated cost fits in `seconds`."""
  if not (seconds > 0 and seconds_per_step > 0):
    raise ValueError(f'Need seconds > 0 and seconds_per_step > 0, got '
                     f'{seconds} and {seconds_per_step}.')
  return max(multiple, int(seconds / seconds_per_step) // multiple * multiple)


@dataclasses.dataclass(frozen=True)
class PrerequisiteBudget:
  """The steps a study allots to one prerequisite a run trains itself."""
  steps: int
  seconds_per_step: float
  length_key: str  # the config key its steps are written to


@dataclasses.dataclass(frozen=True)
class Budget:
  """A run's length from its task's budget and the calibration."""
  steps: int
  seconds_per_step: float
  prerequisites: Mapping[str, PrerequisiteBudget] = dataclasses.field(
      default_factory=dict)
  # Precomputations before the first step ({name: calibrated seconds}).
  setups: Mapping[str, float] = dataclasses.field(default_factory=dict)

  @property
  def charged_seconds(self) -> float:
    """steps x s/step plus each prerequisite's and setup's seconds."""
    return (self.steps * self.seconds_per_step + self.prerequisite_seconds()
            + sum(self.setups.values()))

  def prerequisite_seconds(self) -> float:
    """Charged seconds of the prerequisites, paid before the first step."""
    return sum(p.steps * p.seconds_per_step
               for p in self.prerequisites.values())

  def describe(self) -> str:
    """'N steps' plus ' + M NAME steps' per prerequisite."""
    return f'{self.steps} steps' + ''.join(
        f' + {p.steps} {name} steps' for name, p in
        self.prerequisites.items()) + ''.join(
            f' + {name} ({seconds:.3g} s)' for name, seconds in
            self.setups.items())


def config_value(config, key: str):
  """config['a.b'] for a dotted key."""
  return functools.reduce(getattr, key.split('.'), config)


class DoesNotFit(ValueError):
  """The method's precomputations alone cost more than the budget: at
  this budget it produces no generator (`harness` records such a run as
  failed, e.g. DMD's regression pairs on a short budget axis)."""


def charged_prerequisites(config) -> dict:
  """{name: context.Prerequisite} of the runs `config`'s method trains
  itself before its first step and a study pays from the run's budget:
  those it trains here and whose length and share keys it declares."""
  requests = {name: prerequisites.with_run_config(p, config) for name, p in
              methods.get(config.method).prerequisites(config).items()}
  return {name: p for name, p in requests.items()
          if p.run_config is not None and p.length_key and p.share_key}


def split_budget(seconds: float, calibration: dict, config,
                 multiple: int = 1) -> Budget:
  """Converts `seconds` into steps: each charged prerequisite gets the
  share its `share_key` says (at its own calibrated step cost,
  `calibration['NAME_seconds_per_step']`), the run the rest."""
  per_step = calibration['seconds_per_step']
  shares, allotted = {}, {}
  for name, request in charged_prerequisites(config).items():
    share = config_value(config, request.share_key)
    if not 0 < share < 1:
      raise ValueError(f'`{request.share_key}` must be in (0, 1), got '
                       f'{share}.')
    cost_key = f'{name}_seconds_per_step'
    if cost_key not in calibration:
      raise ValueError(f'The calibration has no {cost_key!r}; recalibrate '
                       'the cell (delete its entry in calibration.json).')
    shares[name] = share
    allotted[name] = PrerequisiteBudget(
        steps_for_budget(share * seconds, calibration[cost_key]),
        calibration[cost_key], request.length_key)
  if sum(shares.values()) >= 1:
    raise ValueError(f'The prerequisites\' shares {shares} leave nothing '
                     'of the budget for the run itself.')
  setups = charged_setups(config, calibration)
  rest = ((1 - sum(shares.values())) * seconds if shares else seconds
          ) - sum(setups.values())
  if rest <= 0:
    raise DoesNotFit(f'The precomputations {setups} (seconds) leave '
                     f'nothing of the {seconds} s budget for training.')
  steps = steps_for_budget(rest, per_step, multiple)
  return Budget(steps, per_step, allotted, setups)


def charged_setups(config, calibration: dict) -> dict[str, float]:
  """{name: calibrated seconds} of the precomputations `config`'s method
  makes before its first step (`methods.setups`), paid from the run's
  part of the budget. A calibration taken before precomputations were
  timed has no `NAME_setup_seconds` and charges none: its results were
  trained so (results/core), and keep their budgets; every calibration
  since records them."""
  return {name: calibration[f'{name}_setup_seconds']
          for name in methods.setups(config)
          if f'{name}_setup_seconds' in calibration}


def apply_budget(config, budget: Budget) -> None:
  """Writes the run's and its prerequisites' lengths into `config`, each
  at the key its owner declared (`train.steps`, `length_key`)."""
  config.train.steps = budget.steps
  for p in budget.prerequisites.values():
    config_lib.set_by_path(config, p.length_key, p.steps)


# ------------------------------------------------------------- calibration


def machine() -> dict:
  """What the calibration ran on (budgets are seconds of this machine)."""
  model = platform.processor() or platform.machine()
  if os.path.exists('/proc/cpuinfo'):
    with open('/proc/cpuinfo') as f:
      names = [line.split(':', 1)[1].strip() for line in f
               if line.startswith('model name')]
    model = names[0] if names else model
  return {'processor': model,
          'cpu_count': os.cpu_count(), 'python': platform.python_version(),
          'jax': __import__('jax').__version__,
          'date': time.strftime('%Y-%m-%d')}


# A calibration times blocks until two in a row agree to this fraction (at
# most `CALIBRATION_BLOCKS`) and keeps the fastest: other work on the
# machine only ever slows a step down.
CALIBRATION_AGREEMENT = 0.05
CALIBRATION_BLOCKS = 8
# Cores busy with other processes above which a calibration is flagged.
BUSY_CORES_LIMIT = 0.5


def stable_seconds_per_step(config, work: str, seconds: float) -> float:
  """`runner.seconds_per_step` over blocks of `seconds` until two in a
  row agree within `CALIBRATION_AGREEMENT`; the fastest block."""
  return runner.seconds_per_step(config, work, min_seconds=seconds,
                                 agreement=CALIBRATION_AGREEMENT,
                                 max_repeats=CALIBRATION_BLOCKS)


def busy_cores(seconds: float = 0.5) -> float | None:
  """Cores other processes kept busy over `seconds` while this one slept
  (from /proc/stat; None where there is none): the load a calibration
  shares the machine with."""
  def sample():
    with open('/proc/stat') as f:
      fields = [float(x) for x in f.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait
  try:
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
  except (OSError, ValueError, IndexError):
    return None
  cores = os.cpu_count() or 1
  busy = 1 - (idle1 - idle0) / max(total1 - total0, 1e-9)
  return round(busy * cores, 2)


def _warn_if_loaded(key: str, entry: dict) -> None:
  """Flags (in the entry and in one line) a calibration taken while other
  processes kept more than `BUSY_CORES_LIMIT` cores busy: its seconds per
  step are inflated, and every budget in steps shrinks with them."""
  busy = [b for b in (entry['other_busy_cores'],
                      entry['other_busy_cores_after']) if b is not None]
  if busy and max(busy) > BUSY_CORES_LIMIT:
    entry['loaded'] = True
    print(f'warning: calibration of {key} ran while other processes kept '
          f'{max(busy):.2g} cores busy; its budgets in steps are too small. '
          'Delete its entry in calibration.json and rerun on an idle '
          'machine.', flush=True)


def timed_config(task, method):
  """The config a cell's calibration times: its first search point."""
  point = suite_lib.search_points(method)[0]
  config = suite_lib.point_config(task, method, point)
  config.eval.seed = task['eval_seed']
  config.train.progress = False
  return config


def _timed_keys(config) -> dict:
  """What a calibration records of the config it timed: every resolved key
  but the evaluation's, which a step's cost does not depend on."""
  return {k: v for k, v in provenance.resolved_config(config).items()
          if not k.startswith('eval.')}


def outdated_keys(entry: dict, task, method) -> list[str]:
  """The keys on which the config a stored calibration timed differs from
  the cell's now (a network or batch changed: its step costs what it did
  no longer), renamed keys mapped and keys one side lacks skipped, as for
  results (`provenance.same_config`). [] when current, or when the entry
  predates recording its config and cannot be checked."""
  if 'config' not in entry:
    return []
  return provenance.changed_keys(entry['config'],
                                 _timed_keys(timed_config(task, method)))


def current_calibration(suite, task, method) -> dict | None:
  """The cell's stored calibration, or None when there is none or it timed
  a config that has changed since (`outdated_keys`)."""
  entry = store.stored_calibrations(suite).get(
      f'{task["name"]}/{method["name"]}')
  if entry is None or outdated_keys(entry, task, method):
    return None
  return entry


def calibrate(suite, task, method) -> dict:
  """Seconds per step of the method's first search point on the task (and
  of each prerequisite it trains, as its own run), measured once and
  stored with the config it timed, and measured again when that config
  changes (`outdated_keys`). The search axes must not change a step's
  cost (learning rates, temperatures, shares): the first point's cost
  stands for all of them."""
  path = store.calibration_path(suite)
  table = store.calibration_file(suite) or {'machine': machine(), 'runs': {}}
  key = f'{task["name"]}/{method["name"]}'
  stored = table['runs'].get(key)
  if stored is not None:
    changed = outdated_keys(stored, task, method)
    if not changed:
      return stored
    print(f'{key}: calibrated with another config ({", ".join(changed)} '
          'changed since); calibrating again', flush=True)
  config = timed_config(task, method)
  timed = _timed_keys(config)
  work = os.path.join(suite_lib.work_root(suite), 'calibration',
                      task['name'], method['name'])
  if stored is not None:
    # Its timing runs (a teacher among them) hold the old config's
    # checkpoints, which the runner would refuse to continue from.
    shutil.rmtree(work, ignore_errors=True)
  entry = {}
  start = time.perf_counter()
  seconds = suite.get('calibration_seconds', 2.0)
  for request in charged_prerequisites(config).values():
    config_lib.set_by_path(config, request.length_key,
                           CALIBRATION_PREREQUISITE_STEPS)
  entry['other_busy_cores'] = busy_cores()
  for name, request in charged_prerequisites(config).items():
    entry[f'{name}_seconds_per_step'] = stable_seconds_per_step(
        request.run_config, os.path.join(work, f'{name}_timing'), seconds)
  entry['seconds_per_step'] = stable_seconds_per_step(config, work, seconds)
  entry.update(runner.setup_seconds(config, work))
  entry['other_busy_cores_after'] = busy_cores()
  _warn_if_loaded(key, entry)
  print(f'calibrated {key}: {entry}', flush=True)
  entry['config'] = timed
  table = store.calibration_file(suite) or {'machine': machine(), 'runs': {}}
  table['runs'][key] = entry
  store.write_json(path, table)
  store.add_wall_time(suite, time.perf_counter() - start)
  return entry


def calibration_table(suite, only_tasks=None, only_methods=None) -> str:
  """Calibrates every cell and tabulates the steps its budget buys and
  the suite's total charged seconds (what training alone will cost)."""
  lines, total = ['task | method | s/step | steps (first point)'], 0.0
  for task, method in suite_lib.plan(suite, only_tasks, only_methods):
    entry = calibrate(suite, task, method)
    point = suite_lib.search_points(method)[0]
    budget = split_budget(task['budget_seconds'], entry,
                          suite_lib.point_config(task, method, point))
    lines.append(f'{task["name"]} | {method["name"]} | '
                 f'{entry["seconds_per_step"]:.4g} | {budget.steps}'
                 + ''.join(f' + {p.steps} {name}'
                           for name, p in budget.prerequisites.items()))
    total += budget.charged_seconds * (suite['search_points']
                                       + len(suite['final_seeds']))
  lines.append(f'total charged: {total / 3600:.2f} h')
  return '\n'.join(lines)
