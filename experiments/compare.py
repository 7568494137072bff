r"""The fair comparison harness: a suite of tasks x methods at equal compute
and equal tuning effort, several seeds, intervals (docs/leaderboard.md).

  python -m experiments.compare --suite suites/core.py [--dry_run]
  python -m experiments.compare --suite suites/core.py --report_only

A suite file (`suites/core.py`) declares tasks (a config, a budget in
seconds of the calibration machine, the fixed evaluation seed, the metric
hyperparameters are chosen on) and methods (overrides and a search space of
exactly `search_points` points, the same number for every method). The
harness itself is `drift_jax.studies` (suite < store < budget < harness,
leaderboard); this file holds only the flags and `main`. For each task and
method the harness

1. calibrates seconds per training step once (`runner.seconds_per_step`,
   stored in RESULTS/calibration.json with the machine it ran on) and
   converts the budget into steps, so that every later run is deterministic
   in its length; a prerequisite the method trains itself (a DMD teacher)
   is calibrated as its own run and paid from the method's budget, at the
   share its method declares (`dmd.teacher_share`);
2. trains every search point once (seed `tuning_seed`), scored on the
   *validation* split (`eval.split`), and chooses the best by the task's
   metric (a failed point never wins);
3. trains the chosen point with `final_seeds` new seeds, scored on the
   test split;
4. scores a *data row*: `data_draws` independent draws of the data scored
   exactly like samples, where a perfect sampler lands.

Every run of a task uses the same held-out and floor sets (`eval.seed`),
floors average `floor_draws` reference draws, and a run's result (status,
steps, charged seconds, final metrics and its quality-vs-seconds curve) is
written to RESULTS/TASK/METHOD/*.json, small files meant to be committed:
a result already there is never trained again, an interrupted run resumes
from its checkpoints under --workdir, and `--report_only` regenerates the
leaderboard from the stored files alone (`studies.leaderboard`).
"""

from __future__ import annotations

from absl import app
from absl import flags

from drift_jax.studies import budget
from drift_jax.studies import harness
from drift_jax.studies import leaderboard
from drift_jax.studies import suite as suite_lib
from experiments import cli

FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a script (importing adds no flags)."""
  flags.DEFINE_string('suite', 'suites/core.py', 'Suite file (.py).')
  flags.DEFINE_bool('dry_run', False, 'Print the plan (runs to do, steps, '
                    'budget), train nothing.')
  flags.DEFINE_bool('report_only', False, 'Regenerate the leaderboard from '
                    'the stored results; train nothing.')
  flags.DEFINE_bool('calibrate_only', False, 'Calibrate every cell and '
                    'print the steps each budget buys; train nothing.')
  flags.DEFINE_string('tasks', None, 'Comma-separated task names (default: '
                      'all of the suite).')
  flags.DEFINE_string('methods', None, 'Comma-separated method names '
                      '(default: all of the suite).')


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
  if FLAGS.calibrate_only:
    print(budget.calibration_table(suite, only_tasks, only_methods))
    return
  if not FLAGS.report_only:
    todo = harness.run_suite(suite, dry_run=FLAGS.dry_run,
                             only_tasks=only_tasks,
                             only_methods=only_methods)
    if FLAGS.dry_run:
      print('\n'.join(todo) or 'nothing to do')
      print(f'{len(todo)} entries to do')
      return
  path = leaderboard.write(suite)
  print(f'leaderboard: {path}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
