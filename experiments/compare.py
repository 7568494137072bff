r"""The fair comparison harness: a suite of tasks x methods at equal compute
and equal tuning effort, several seeds, intervals (docs/leaderboard.md).

  python -m experiments.compare --suite suites/core.py [--dry_run]
  python -m experiments.compare --suite suites/core.py --report_only

A suite file (`suites/core.py`) declares tasks (a config, a budget in
seconds of the calibration machine, the fixed evaluation seed, the metric
hyperparameters are chosen on) and methods (overrides and a search space of
exactly `search_points` points, the same number for every method). What
the harness does with it (calibration, budgets split over the
prerequisites a method trains itself, tuning on validation, final seeds,
the data row, the committed results under RESULTS/TASK/METHOD/) is
`drift_jax.studies.harness`; the leaderboard is `studies.leaderboard`,
regenerated from the stored files alone by `--report_only`. This file
holds only the flags and `main`.
"""

from __future__ import annotations

import os
import sys

import jax
from absl import app
from absl import flags

from drift_jax.studies import budget
from drift_jax.studies import harness
from drift_jax.studies import leaderboard
from drift_jax.studies import suite as suite_lib
from drift_jax.train import workdir as workdir_lib
from experiments import cli

FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a script (importing adds no flags)."""
  flags.DEFINE_string('suite', 'suites/core.py', 'Suite file (.py).')
  flags.DEFINE_bool('dry_run', False, 'Print the plan (runs to do, steps, '
                    'budget), train nothing.')
  flags.DEFINE_bool('report_only', False, 'Regenerate the leaderboard from '
                    'the stored results and name what is missing; train '
                    'nothing.')
  flags.DEFINE_bool('calibrate_only', False, 'Calibrate every cell and '
                    'print the steps each budget buys; train nothing.')
  flags.DEFINE_string('tasks', None, 'Comma-separated task names (default: '
                      'all of the suite).')
  flags.DEFINE_string('methods', None, 'Comma-separated method names '
                      '(default: all of the suite): their cells, finalists\' '
                      'seeds and budget axis, so workers can split a task.')
  flags.DEFINE_string(
      'compilation_cache', 'SUITE_WORKDIR/jax_cache',
      'Persistent XLA compilation cache for the runs (a run\'s seed is data, '
      'not code: the seeds of a point compile the same programs, about 2 s '
      'of a 21-s toy run). SUITE_WORKDIR is the suite\'s `workdir`; empty '
      'turns it off; JAX_COMPILATION_CACHE_DIR, when set, wins.')
  flags.DEFINE_bool('reuse_stale', False, 'Keep using stored results that '
                    'no longer match the suite (its grid, budget, evaluation '
                    'or metric changed since), with a warning, instead of '
                    'training them again.')


def main(argv):
  cli.run_main(_main, argv)


def _main(argv):
  cli.check_no_arguments(argv)
  suite = suite_lib.load_suite(FLAGS.suite)
  only_tasks = FLAGS.tasks.split(',') if FLAGS.tasks else None
  only_methods = FLAGS.methods.split(',') if FLAGS.methods else None
  for names, kind in ((only_tasks, 'tasks'), (only_methods, 'methods')):
    known = {e['name'] for e in suite[kind]}
    if names and set(names) - known:
      raise ValueError(f'--{kind}: unknown {sorted(set(names) - known)}; '
                       f'the suite has {sorted(known)}.')
  suite['reuse_stale'] = FLAGS.reuse_stale
  results = suite_lib.results_dir(suite)
  os.makedirs(results, exist_ok=True)
  if not (FLAGS.dry_run or FLAGS.report_only):
    use_compilation_cache(suite, FLAGS.compilation_cache)
  with workdir_lib.lock(results):  # one writer per results directory
    _run(suite, only_tasks, only_methods)


def use_compilation_cache(suite, setting: str) -> None:
  """Points JAX's persistent compilation cache at `setting` (the
  `--compilation_cache` flag; every program cached, however fast it
  compiled). A cached executable is the one XLA would compile again, so
  no number changes (tiny suite: all 14 results equal without the cache,
  with it cold and warm)."""
  path = setting.replace('SUITE_WORKDIR', suite_lib.work_root(suite))
  if not path or os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def _run(suite, only_tasks, only_methods):
  if FLAGS.calibrate_only:
    print(budget.calibration_table(suite, only_tasks, only_methods))
    return
  if FLAGS.report_only:
    _print_missing(harness.missing_entries(suite, only_tasks, only_methods))
  else:
    todo = harness.run_suite(suite, dry_run=FLAGS.dry_run,
                             only_tasks=only_tasks,
                             only_methods=only_methods)
    if FLAGS.dry_run:
      print('\n'.join(todo) or 'nothing to do')
      print(f'{len(todo)} entries to do')
      return
  path = leaderboard.write(suite)
  print(f'leaderboard: {path}')


def _print_missing(missing: list[str]) -> None:
  """`--report_only` trains nothing: it names what the leaderboard lacks
  and the command that trains it."""
  if missing:
    print(f'not in the stored results ({len(missing)} entries; '
          f'`python -m experiments.compare --suite {FLAGS.suite}` trains '
          'them):', file=sys.stderr)
    for entry in missing:
      print(f'  {entry}', file=sys.stderr)
  sys.stderr.flush()


if __name__ == '__main__':
  _define_flags()
  app.run(main)
