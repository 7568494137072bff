r"""Trains one run: `--config FILE:ARGS --workdir DIR` (absl flags).

  python -m experiments.main --config configs/toy2d.py:dataset=checkerboard \
      --workdir runs/checkerboard --config.train.steps=367

Multi-host: run the same command on every host with --jax_distributed (or
DRIFT_JAX_DISTRIBUTED=1). On a managed cluster (TPU pods, SLURM, ...) JAX
finds the coordinator and process ids itself; elsewhere pass
--coordinator=host:port --num_processes=N --process_id=i
(experiments/multihost_demo.py runs 2 local processes this way).
"""

import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import cli

config_flags.DEFINE_config_file('config', None, 'Config file and args.',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints and logs.')
flags.DEFINE_bool('jax_distributed',
                  os.environ.get('DRIFT_JAX_DISTRIBUTED', '') == '1',
                  'Call jax.distributed.initialize() (multi-host runs).')
flags.DEFINE_string('coordinator', None, 'host:port of process 0.')
flags.DEFINE_integer('num_processes', None, 'Number of processes.')
flags.DEFINE_integer('process_id', None, 'This process\'s index.')
flags.DEFINE_integer('peer_timeout', 60, 'Multi-host: seconds a process '
                     'may stop answering before the others stop with one '
                     'line (drift_jax.train.peers).')
flags.DEFINE_bool('print_config', False, 'Print the resolved config (every '
                  'key, method defaults and overrides applied) and exit '
                  'without running.')
flags.DEFINE_bool('traceback', False, 'Show the full trace of a config, '
                  'data or workdir error instead of one line.')
flags.mark_flags_as_required(['config'])  # --workdir: unless --print_config
FLAGS = flags.FLAGS


def main(argv):
  cli.run_main(_main, argv, traceback=FLAGS.traceback)


def _main(argv):
  cli.check_no_arguments(argv)
  if not FLAGS.workdir and not FLAGS.print_config:
    raise ValueError('missing required flag --workdir (the directory for '
                     'checkpoints and logs; --help lists the flags)')
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  import jax
  watch = None  # the peer watch of a multi-process run
  if FLAGS.jax_distributed:
    # Must precede any other JAX call.
    jax.distributed.initialize(FLAGS.coordinator, FLAGS.num_processes,
                               FLAGS.process_id,
                               # JAX's own check stays as the backstop.
                               heartbeat_timeout_seconds=2 * FLAGS.peer_timeout
                               + 10)
    from drift_jax.train import peers
    watch = peers.watch(FLAGS.peer_timeout)
  from drift_jax import methods
  from drift_jax.train import runner
  # Method-dependent defaults go after the --config.a.b overrides and do
  # not touch the keys those set.
  config = methods.finalize(
      FLAGS.config, config_flags.get_override_values(FLAGS['config']))
  if FLAGS.print_config:
    methods.validate(config, jax.device_count())
    cli.print_config(config)
    return
  summary = runner.train_and_evaluate(config, FLAGS.workdir)
  if watch is not None:
    watch.finish()  # process 0's summary below may outlast the others
  if jax.process_index() == 0:
    from drift_jax.train import summary as summary_lib
    row = summary_lib.data_row(config)
    print('\n' + '\n'.join(summary_lib.lines(config, summary, row)))
    print(f'plot:    {os.path.join(FLAGS.workdir, "samples.png")}')
    print(f'metrics: {os.path.join(FLAGS.workdir, "metrics.jsonl")}')


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
