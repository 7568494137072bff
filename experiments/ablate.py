r"""Runs a grid of configs through the runner and tabulates and plots it.

  python -m experiments.ablate --sweep sweeps/toy_temperatures.py \
      --workdir runs/ablate/temperatures [--seeds 3] [--dry_run]

A sweep file defines `get_sweep()` returning a dict:
  base: 'configs/toy2d.py:recipe'      the config every point starts from;
  overrides: {'train.steps': 1000}     dotted keys set on every point;
  grid: {'field.temperatures': [(0.02,), (0.05,)], 'method': [...]}
        the axes; points are their Cartesian product. A value may also be a
        dict of several overrides, with an optional 'name' (one setting
        that touches several keys, e.g. a method and its teacher);
  seeds: 3                              config.seed = 0..seeds-1 per point;
  plot_metrics: ('eval/mode_mass/0',)   optional extra metrics to plot
        against step and wall-clock (besides the energy-distance ratio);
  eval_protocol: 'per_seed'             optional: each seed draws its own
        evaluation sets (`config_lib.PER_SEED_EVAL`), the protocol the
        sweeps published before the leaderboard were measured with;
        default 'fixed' (the config's `eval.seed` and `eval.floor_draws`).

Each (point, seed) trains in WORKDIR/POINT/seed_S. A finished run leaves
`result.json` there and is skipped next time, and an interrupted one
resumes from its checkpoints, so re-running the command resumes a sweep.
Outputs in WORKDIR: results.csv (one row per run), results.md (mean +- std
over seeds), samples.png, metric_vs_step.png, metric_vs_wall.png (teacher
time included) and, for 2-D drifting points, fields.png. The sweep itself
is `drift_jax.studies.sweep` (and `sweep_plots`); this file holds only the
flags and `main`.
"""

from absl import app
from absl import flags

from drift_jax.studies import sweep
from experiments import cli

FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a script: importing this module (tests,
  notebooks, other entry points) adds no flags."""
  flags.DEFINE_string('sweep', None, 'Sweep file (.py).')
  flags.DEFINE_string('workdir', None, 'Directory of the sweep\'s runs.')
  flags.DEFINE_integer('seeds', 0, 'Override the sweep file\'s number of '
                       'seeds.')
  flags.DEFINE_bool('dry_run', False, 'List the runs still to do, train '
                    'nothing.')
  flags.DEFINE_string('filter', None, 'Regex: only grid points whose name '
                      'matches (e.g. "teacher=oracle").')


def main(argv):
  cli.run_main(_main, argv)


def _main(argv):
  cli.check_no_arguments(argv)
  sweep.run(FLAGS.sweep, FLAGS.workdir, FLAGS.seeds, FLAGS.dry_run,
            FLAGS.filter)


if __name__ == '__main__':
  _define_flags()
  flags.mark_flags_as_required(['sweep', 'workdir'])
  app.run(main)
