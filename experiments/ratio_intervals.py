r"""What a suite's stored results still allow: the ratio of one method's
headline metric to each other's, per task, as a geometric mean with the
95 % t-interval of the paired log ratios over the shared final seeds.

  python -m experiments.ratio_intervals --suite suites/core.py \
      --reference drifting --others kernel_gradient,sharp_companion,mmd

A ratio above 1 means the reference is worse (the metrics here are lower
is better); the interval's upper end is how much worse the data still
allow it to be, its lower end how much better.
"""

import math

import numpy as np
from absl import app
from absl import flags

from drift_jax import evaluators
from drift_jax import stats
from drift_jax.studies import store
from drift_jax.studies import suite as suite_lib
from experiments import cli

FLAGS = flags.FLAGS


def _define_flags():
  flags.DEFINE_string('suite', 'suites/core.py', 'Suite file (.py).')
  flags.DEFINE_string('reference', 'drifting', 'The method in the '
                      'numerator.')
  flags.DEFINE_string('others', None, 'Comma-separated methods in the '
                      'denominator (default: every other method).')


def ratio_interval(reference: list, other: list, metric: str):
  """Geometric-mean ratio reference / other with its t-interval, paired by
  seed over the seeds both finished (an Interval on the ratio scale)."""
  by_seed = {r['seed']: r['final'].get(metric, math.nan) for r in other
             if r['status'] == 'ok'}
  logs = [math.log(r['final'][metric] / by_seed[r['seed']])
          for r in reference if r['status'] == 'ok' and r['seed'] in by_seed]
  iv = stats.mean_interval(np.asarray(logs))
  return stats.Interval(math.exp(iv.mean), math.exp(iv.low),
                        math.exp(iv.high), iv.n, iv.failed)


def table(suite, reference: str, others) -> str:
  methods = {m['name']: m for m in suite['methods']}
  lines = ['| task | metric | ' + ' | '.join(f'{reference} / {o}'
                                            for o in others) + ' |',
           '|---|---|' + '---|' * len(others)]
  for task in suite['tasks']:
    metric = task['metric']
    if evaluators.higher_is_better(metric):
      continue  # a ratio of a higher-is-better metric reads the other way
    ref = store.stored_cell(suite, task, methods[reference])['final']
    cells = [str(ratio_interval(ref, store.stored_cell(
        suite, task, methods[o])['final'], metric)) for o in others]
    lines.append(f'| {task["name"]} | {evaluators.label(metric)} | '
                 + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv):
  cli.run_main(_main, argv)


def _main(argv):
  cli.check_no_arguments(argv)
  suite = suite_lib.load_suite(FLAGS.suite)
  names = [m['name'] for m in suite['methods']]
  others = (FLAGS.others.split(',') if FLAGS.others
            else [n for n in names if n != FLAGS.reference])
  cli.check_subset('others', others, names)
  cli.check_subset('reference', [FLAGS.reference], names)
  print(table(suite, FLAGS.reference, others))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
