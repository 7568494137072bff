r"""Retrains stored suite results with today's defaults (the divergence
guard on, `config_lib.DEFAULT_DIVERGENCE_FACTOR`) and checks that none
trips and that each run's final headline metric equals the stored one:
the evidence that the default guard leaves a committed suite unchanged.

Each selected result is rebuilt exactly as the harness ran it (its
point, seed, budget in steps from the stored calibration, evaluation
schedule) into a scratch workdir; its largest loss-to-median ratio is
the guard's own (`guards.DivergenceGuard.ratio`).

  python -m experiments.guard_check --suite suites/core.py \
      --workdir runs/guard_check --phase final --seed 1
"""

from __future__ import annotations

import math
import os

from absl import app
from absl import flags

from drift_jax.config import config_lib
from drift_jax.studies import harness
from drift_jax.studies import store
from drift_jax.studies import suite as suite_lib
from drift_jax.train import runner
from experiments import divergence_ratios

_SUITE = flags.DEFINE_string('suite', 'suites/core.py', 'Suite file.')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/guard_check',
                               'Scratch folder for the retrained runs.')
_PHASE = flags.DEFINE_enum('phase', 'final', ['tune', 'final', 'default'],
                           'Which stored results to retrain.')
_SEED = flags.DEFINE_integer('seed', 1, 'Which seed of that phase.')


def stored_runs(suite, phase: str, seed: int):
  """(Run, stored result, calibration) for each stored result of `phase`
  and `seed`, in the suite's plan order."""
  calibrations = store.stored_calibrations(suite)
  for task, method in suite_lib.plan(suite):
    key = f'{task["name"]}/{method["name"]}'
    cell = store.stored_cell(suite, task, method)
    for result in cell.get(phase, []):
      if result.get('seed') != seed or key not in calibrations:
        continue
      yield (suite_lib.Run(task, method, phase, result['point'], seed,
                           result['overrides']),
             result, calibrations[key])


def retrain(suite, run, calibration, classifier_dir, workdir) -> dict:
  """Trains `run` as the harness did; {} when the guard stopped it."""
  budget = harness.run_budget(run, calibration)
  config = harness.run_config(suite, run, budget, classifier_dir)
  try:
    return runner.train_and_evaluate(config, workdir)
  except FloatingPointError as e:
    print(f'  stopped: {e}', flush=True)
    return {}


def main(argv) -> None:
  del argv
  suite = suite_lib.load_suite(_SUITE.value)
  rows, classifiers = [], {}
  for run, stored, calibration in stored_runs(suite, _PHASE.value,
                                              _SEED.value):
    task = run.task
    changed = harness.stale_changes(suite, run, stored, calibration)
    if changed:
      print(f'  note: the suite now differs from the stored run in '
            f'{", ".join(changed)}', flush=True)
    if task['name'] not in classifiers:
      classifiers[task['name']] = harness.task_classifier(suite, task)
    workdir = os.path.join(_WORKDIR.value, task['name'],
                           run.method['name'], run.name)
    summary = retrain(suite, run, calibration, classifiers[task['name']],
                      workdir)
    ratio, step = divergence_ratios.largest_ratio(workdir)
    new = summary.get(task['metric'], math.nan)
    old = stored['final'].get(task['metric'], math.nan)
    rows.append((ratio, new == old or (math.isnan(new) and math.isnan(old)),
                 abs(new - old) / max(abs(old), 1e-30)))
    print(f'{task["name"]}/{run.method["name"]}/{run.name}: largest ratio '
          f'{ratio:.2f}x (step {step}); {task["metric"]} {new:.6g} '
          f'(stored {old:.6g})', flush=True)
  if not rows:
    raise SystemExit(f'no stored {_PHASE.value} results of seed '
                     f'{_SEED.value} in {suite_lib.results_dir(suite)}.')
  factor = config_lib.DEFAULT_DIVERGENCE_FACTOR
  stopped = sum(1 for r in rows if r[0] > factor)
  print(f'{len(rows)} runs; largest ratio {max(r[0] for r in rows):.2f}x; '
        f'{stopped} above the default factor {factor:g}; final '
        f'metric identical in {sum(r[1] for r in rows)} of {len(rows)} '
        f'(largest relative difference {max(r[2] for r in rows):.2g}).')


if __name__ == '__main__':
  app.run(main)
