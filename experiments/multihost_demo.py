r"""Multi-host on one machine: 2 processes x 4 CPU devices vs 1 x 8.

  python -m experiments.multihost_demo [--steps 4]

Starts `experiments.main` twice with --jax_distributed (a local coordinator,
process ids 0 and 1, 4 fake CPU devices each; each process loads only its
half of every global batch), then once as a single 8-device process, and
compares the loss trajectories in the two metrics.jsonl files. Global
negatives make them equal up to float32 reduction order. Exits 1 if not.
"""

import os
import socket
import subprocess
import sys
import tempfile

import numpy as np
from absl import app
from absl import flags

from drift_jax.train import reporting
from experiments import cli

FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a script: importing this module (tests,
  notebooks, other entry points) adds no flags."""
  flags.DEFINE_integer('steps', 4, 'Training steps of each run.')
  flags.DEFINE_string('workdir', None, 'Parent of the two runs (default: a '
                      'new temporary directory).')
# The child processes run `experiments.main` from the checkout root, where
# `configs/` is.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _command(workdir, steps):
  return [sys.executable, '-m', 'experiments.main',
          '--config=configs/toy2d.py:runlocal', f'--workdir={workdir}',
          f'--config.train.steps={steps}', '--config.eval.plot=false',
          f'--config.train.eval_every={steps}',
          f'--config.train.checkpoint_every={steps}']


def _losses(workdir):
  return np.array([r['train/loss'] for r in reporting.read_metrics(workdir)
                   if 'train/loss' in r])


def main(argv):
  cli.check_no_arguments(argv)
  steps = FLAGS.steps
  root = FLAGS.workdir or tempfile.mkdtemp(prefix='multihost_')
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  port = _free_port()
  multi = os.path.join(root, 'two_processes')
  procs = [subprocess.Popen(
      _command(multi, steps) + [
          '--jax_distributed', f'--coordinator=localhost:{port}',
          '--num_processes=2', f'--process_id={i}'],
      cwd=ROOT, env=dict(env, JAX_NUM_CPU_DEVICES='4'))
           for i in range(2)]
  if any(p.wait(timeout=600) for p in procs):
    sys.exit('a distributed process failed')
  single = os.path.join(root, 'one_process')
  subprocess.run(_command(single, steps), cwd=ROOT, check=True,
                 env=dict(env, JAX_NUM_CPU_DEVICES='8'))
  a, b = _losses(multi), _losses(single)
  print(f'2 processes x 4 devices: {a}\n1 process  x 8 devices: {b}')
  ok = a.shape == b.shape == (steps,) and np.allclose(a, b, rtol=2e-5)
  print('MATCH' if ok else 'MISMATCH')
  sys.exit(0 if ok else 1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
