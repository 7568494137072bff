r"""Flips one random bit in a checkpoint's data files and restores, N times.

  python -m experiments.bitflip_probe --trials 40
  python -m experiments.bitflip_probe --trials 40 --nodigests  # unchecked

Trains a tiny drifting run (6 steps, checkpoints at 3 and 6), then per
trial copies its checkpoints, flips one bit at a random offset of a random
file of the newest checkpoint's array data, and restores the way a resumed
run does (`checkpoint.restore_latest`). Each trial is one of:
  unchanged  the newest checkpoint restored, equal to what was saved (the
             bit was in padding, or orbax read around it);
  detected   it was refused (unreadable, or its digest did not match) and
             the older one restored, equal to what was saved at step 3;
  silent     the newest checkpoint restored with changed weights.
`--nodigests` ignores the recorded digests (the behaviour before them).
"""

import os
import shutil
import tempfile

import numpy as np
from absl import app
from absl import flags
from absl import logging

flags.DEFINE_integer('trials', 40, 'Number of bit flips.')
flags.DEFINE_integer('seed', 0, 'Seed of the flips.')
flags.DEFINE_bool('digests', True, 'Verify the recorded digests.')
FLAGS = flags.FLAGS


def _data_files(step_dir):
  """The files that hold array bytes (orbax's ocdbt data, or zarr
  chunks): everything but JSON metadata."""
  files = []
  for root, _, names in os.walk(step_dir):
    for name in names:
      path = os.path.join(root, name)
      if not name.endswith('.json') and os.path.getsize(path) > 0 and \
          ('/d/' in path or name.startswith('chunk') or 'ocdbt' in root):
        files.append(path)
  return sorted(files)


def _flip(path, rng):
  with open(path, 'r+b') as f:
    size = os.path.getsize(path)
    offset = int(rng.integers(size))
    f.seek(offset)
    byte = f.read(1)[0]
    f.seek(offset)
    f.write(bytes([byte ^ (1 << int(rng.integers(8)))]))
  return offset


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  import jax

  from drift_jax import methods
  from drift_jax.train import checkpoint
  from drift_jax.train import digests
  from drift_jax.train import runner
  if not FLAGS.digests:
    digests.read = lambda directory, step: None
  base = tempfile.mkdtemp(prefix='bitflip_')
  config = methods.base_config()
  methods.runlocal(config)
  config.data.name = 'checkerboard'
  config.eval.plot = False
  config.train.update(steps=6, checkpoint_every=3, eval_every=6,
                      log_every=3)
  runner.train_and_evaluate(config, os.path.join(base, 'run'))
  source = os.path.join(base, 'run', 'checkpoints')
  config = methods.finalize(config)
  method = methods.get(config.method).make(
      config, _context(config))
  abstract = checkpoint.abstract_like(
      jax.eval_shape(method.init, jax.random.key(0)),
      jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  saved = {step: checkpoint.restore_from(_copy(source, base, 'ref'),
                                         abstract)[1] for step in (6,)}
  older = _restore_step(_copy(source, base, 'ref3'), 3, abstract)
  rng = np.random.default_rng(FLAGS.seed)
  tally = {'unchanged': 0, 'detected': 0, 'silent': 0}
  for trial in range(FLAGS.trials):
    directory = _copy(source, base, f't{trial}')
    files = _data_files(os.path.join(directory, '6'))
    target = files[int(rng.integers(len(files)))]
    offset = _flip(target, rng)
    manager = checkpoint.make_manager(directory, max_to_keep=3)
    try:
      step, state = checkpoint.restore_latest(manager, abstract)
    except RuntimeError:
      step, state = None, None
    finally:
      manager.close()
    if step == 6 and _equal(state, saved[6]):
      outcome = 'unchanged'
    elif step == 6:
      outcome = 'silent'
    else:
      assert step in (3, None) and (state is None or _equal(state, older))
      outcome = 'detected'
    tally[outcome] += 1
    print(f'trial {trial}: {os.path.relpath(target, directory)} byte '
          f'{offset}: {outcome}')
  shutil.rmtree(base, ignore_errors=True)
  print(f'{FLAGS.trials} flips, digests {"on" if FLAGS.digests else "off"}: '
        f'{tally}')


def _context(config):
  from drift_jax.data import datasets as data_lib
  from drift_jax.methods.context import RunContext
  from drift_jax.parallel import sharding as parallel
  dataset = data_lib.for_run(config)
  return RunContext(dim=dataset.dim, mesh=parallel.make_mesh(1),
                    image_shape=None, num_classes=0, prerequisites={},
                    data=dataset)


def _copy(source, base, name):
  target = os.path.join(base, name)
  shutil.copytree(source, target)
  return target


def _restore_step(directory, step, abstract):
  from drift_jax.train import checkpoint
  for other in os.listdir(directory):
    if other.isdigit() and int(other) != step:
      shutil.rmtree(os.path.join(directory, other))
  return checkpoint.restore_from(directory, abstract)[1]


def _equal(a, b):
  import jax
  return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in
             zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


if __name__ == '__main__':
  app.run(main)
