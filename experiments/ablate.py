r"""Runs a grid of configs through the runner and tabulates and plots it.

  python -m experiments.ablate --sweep sweeps/toy_temperatures.py \
      --workdir runs/ablate/temperatures [--seeds 3] [--dry_run]

The sweep file's format, the resumable layout WORKDIR/POINT/seed_S and the
outputs (results.csv, results.md, the figures) are those of
`drift_jax.studies.sweep`; this file holds only the flags and `main`.
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
