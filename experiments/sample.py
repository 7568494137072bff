r"""Writes samples from a trained run: `--workdir DIR [--num_samples N]`.

  python -m experiments.sample --workdir runs/checkerboard --num_samples 1000
  python -m experiments.sample --workdir runs/fm --guidance 2 --out /tmp/fm

From any finished or interrupted workdir (its newest checkpoint; nothing in
it is written): OUT/samples.npy [N, D] (images flattened, values in
[-1, 1]), OUT/labels.npy [N] for class-conditional runs (class-major: rows
c N/C .. (c+1) N/C - 1 have class c) and OUT/samples.png (image runs: one
row per class beside the same layout of real images; point data: the
samples over the held-out set). OUT defaults to WORKDIR/sampled.
"""

import os

from absl import app
from absl import flags

from experiments import cli

flags.DEFINE_string('workdir', None, 'The run\'s workdir.')
flags.DEFINE_integer('num_samples', 64, 'How many samples.')
flags.DEFINE_integer('seed', -1, 'Sampling seed (-1: the key of the run\'s '
                     'evaluation, which reproduces its samples.npy).')
flags.DEFINE_float('guidance', None, 'CFG scale alpha of a class-'
                   'conditional drifting run (default: its '
                   'conditional.eval_alpha).')
flags.DEFINE_bool('ema', True, 'Use the EMA parameters when the run kept '
                  'them (--noema: the raw parameters).')
flags.DEFINE_string('out', None, 'Output folder (default WORKDIR/sampled).')
flags.DEFINE_bool('traceback', False, 'Show the full trace of an error.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def main(argv):
  cli.run_main(_main, argv, traceback=FLAGS.traceback)


def _main(argv):
  cli.check_no_arguments(argv)
  from absl import logging
  logging.set_verbosity(logging.WARNING)  # orbax logs a restore at INFO
  import numpy as np

  from drift_jax.train import reporting
  from drift_jax.train import sampling
  if FLAGS.num_samples < 1:
    raise ValueError(f'--num_samples must be >= 1, got {FLAGS.num_samples}.')
  generator = sampling.load_generator(FLAGS.workdir, ema=FLAGS.ema,
                                      guidance=FLAGS.guidance)
  samples = generator.sample(FLAGS.num_samples,
                             None if FLAGS.seed < 0 else FLAGS.seed)
  out = FLAGS.out or os.path.join(FLAGS.workdir, 'sampled')
  os.makedirs(out, exist_ok=True)
  paths = [os.path.join(out, 'samples.npy')]
  np.save(paths[0], samples)
  labels = generator.labels(FLAGS.num_samples)
  if labels is not None:
    paths.append(os.path.join(out, 'labels.npy'))
    np.save(paths[-1], labels)
  paths.append(os.path.join(out, 'samples.png'))
  state = (f'step {generator.step}' + ('' if generator.finished
                                       else ' (unfinished)')
           + (', EMA' if generator.ema else ''))
  title = f'{generator.config.method} on {generator.config.data.name}, {state}'
  data = generator.dataset
  if generator.image_shape is not None:
    reporting.plot_image_grid(paths[-1], samples, generator.image_shape,
                              title, num_classes=generator.num_classes,
                              real=data.held_out,
                              real_labels=data.held_out_labels)
  else:
    reporting.plot_samples(paths[-1], samples, data.held_out, title)
  print(f'{FLAGS.num_samples} samples of {FLAGS.workdir} at {state}:')
  for path in paths:
    print(f'  {path}')


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
