r"""What checksumming a checkpoint costs (`drift_jax.train.digests`).

  python -m experiments.benchmarks.digest_cost

For the default toy (configs/toy2d.py) and digits (configs/digits.py)
states: the state's size, the seconds of one asynchronous save with its
wait (orbax), the seconds of its digest (SHA-256 of every array, on the
host), and their ratio; medians of `--repeats` in one process.
"""

import functools
import os
import statistics
import tempfile
import time

import jax
from absl import app
from absl import flags
from absl import logging

flags.DEFINE_integer('repeats', 5, 'Timed repeats (after one warm-up).')
FLAGS = flags.FLAGS

CONFIGS = (('toy (MLP 32-256x3-2, EMA, Adam)', 'configs/toy2d.py'),
           ('digits (conv generator, EMA, Adam)', 'configs/digits.py'))


def _state(spec):
  from drift_jax import methods
  from drift_jax.config import config_lib
  from drift_jax.data import datasets as data_lib
  from drift_jax.methods.context import RunContext
  from drift_jax.parallel import sharding as parallel
  from drift_jax.train import runner
  config = methods.finalize(config_lib.load_config_file(spec))
  dataset = data_lib.for_run(config)
  mesh = parallel.make_mesh(1)
  ctx = RunContext(dim=dataset.dim, mesh=mesh,
                   image_shape=dataset.image_shape, num_classes=0,
                   prerequisites={}, data=dataset)
  method = methods.get(config.method).make(config, ctx)
  return runner.init_state(method, mesh, config.seed)


def _median_seconds(fn, repeats):
  fn()
  times = []
  for _ in range(repeats):
    began = time.perf_counter()
    fn()
    times.append(time.perf_counter() - began)
  return statistics.median(times)


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  from drift_jax.train import digests
  print('| state | size | save + wait | digest | digest / save |')
  print('|---|---|---|---|---|')
  for name, spec in CONFIGS:
    state = _state(spec)
    size = sum(x.nbytes for x in jax.tree.leaves(state)) / 2**20
    saving = _save_seconds(state, FLAGS.repeats)
    digesting = _median_seconds(functools.partial(digests.of_state, state),
                                FLAGS.repeats)
    print(f'| {name} | {size:.2f} MiB | {saving * 1e3:.1f} ms | '
          f'{digesting * 1e3:.1f} ms | {digesting / saving:.2f}x |')


def _save_seconds(state, repeats):
  """Median seconds of an asynchronous orbax save and its wait."""
  from drift_jax.train import checkpoint
  with tempfile.TemporaryDirectory() as directory:
    manager = checkpoint.make_manager(os.path.join(directory, 'c'),
                                      max_to_keep=2)
    steps = iter(range(1, repeats + 2))

    def save():
      checkpoint.save(manager, next(steps), state)
      checkpoint.wait(manager)

    try:
      return _median_seconds(save, repeats)
    finally:
      manager.close()


if __name__ == '__main__':
  app.run(main)
