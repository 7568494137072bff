r"""Multi-host on one machine: 2 processes x 4 CPU devices vs 1 x 8.

  python -m experiments.multihost_demo [--steps 4] [--fsdp 4]
  python -m experiments.multihost_demo \
      --config configs/digits.py:runlocal,conditional \
      --set data.draw=epochs [--steps 6] [--rtol 1e-4]
  python -m experiments.multihost_demo --preempt_one [--steps 400] [--fsdp 8]
  python -m experiments.multihost_demo --stop_one=hang|die [--peer_timeout 10]

Starts `experiments.main` twice with --jax_distributed (a local coordinator,
process ids 0 and 1, 4 fake CPU devices each; each process loads only its
half of every global batch), then once as a single 8-device process, and
compares the loss trajectories in the two metrics.jsonl files. Global
negatives make them equal up to float32 reduction order. Exits 1 if not.
With --fsdp N the two processes train on a ('data', 'fsdp') = (8 / N, N)
mesh, the state sharded along 'fsdp' (at N = 8 across both processes'
devices, at N = 4 over each process's own four), and the one process
stays at fsdp = 1: the trajectories must still agree.
--config / --set run another config (default the 2-D toy, whose batches
come from its sampler): a labelled dataset with `data.draw=epochs` reads
every batch from the per-class memory bank, each process its half, and
both runs must still agree, since its batches are a function of (seed,
step) alone (drift_jax/data/bank.py).

--rtol: the runs differ by float32 reduction order only (8 devices' partial
sums against 2 x 4). On the toy that is under 2e-5 relative (the default);
on runlocal digits (conditional, data.draw=epochs) under 3e-5 over 40
steps, where runs on other batches (data.draw=replacement) differ by 4e-4
at their closest step and 2e-2 at the median: there 1e-4 tells the two
apart.

--preempt_one sends SIGTERM to process 1 alone once the run has logged a
step: both processes must save the same step and exit 75 (they agree on
the signal every step, `preemption.agreed`). The same command then resumes
both, and their trajectory must equal an uninterrupted run's (one 8-device
process, up to float32 reduction order; with --against=pair, an
uninterrupted pair: the check for the streaming bank, whose per-process
rings are saved with every checkpoint and whose batches depend on the
number of processes).

--stop_one stops process 1 with SIGSTOP (it hangs) or SIGKILL (it dies)
once a step is logged: process 0 must exit with status 1 within the peer
timeout, printing one line (`drift_jax.train.peers`).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

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
  flags.DEFINE_integer('fsdp', 1, "The two processes' `mesh.fsdp` (the "
                       'one-process run keeps 1).')
  flags.DEFINE_bool('preempt_one', False, 'SIGTERM to one process only, '
                    'then resume (see the module docstring).')
  flags.DEFINE_enum('against', 'one_process', ['one_process', 'pair'],
                    "--preempt_one's reference: one uninterrupted 8-device "
                    'process, or an uninterrupted pair (for data.draw='
                    'stream, whose batches depend on the process count).')
  flags.DEFINE_enum('stop_one', None, ['hang', 'die'], 'SIGSTOP (hang) or '
                    'SIGKILL (die) to process 1 mid-run: process 0 must '
                    'stop within --peer_timeout with one line.')
  flags.DEFINE_integer('peer_timeout', 10, 'Passed to experiments.main '
                       'with --stop_one.')
  flags.DEFINE_string('config', 'configs/toy2d.py:runlocal', 'The runs\' '
                      '--config (a file and its options, as for '
                      'experiments.main).')
  flags.DEFINE_multi_string('set', [], 'KEY=VALUE: a --config.KEY=VALUE '
                            'override of all runs (repeatable).')
  flags.DEFINE_float('rtol', 2e-5, 'Relative tolerance of the loss '
                     'trajectories\' agreement (float32 reduction order; see '
                     'the module docstring).')
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
          f'--config={FLAGS.config}', f'--workdir={workdir}',
          f'--config.train.steps={steps}', '--config.eval.plot=false',
          f'--config.train.eval_every={steps}',
          f'--config.train.checkpoint_every={steps}'] + [
              f'--config.{override}' for override in FLAGS.set]


def _losses(workdir):
  return np.array([r['train/loss'] for r in reporting.read_metrics(workdir)
                   if 'train/loss' in r])


def _pair_flags(port, index):
  return ['--jax_distributed', f'--coordinator=localhost:{port}',
          '--num_processes=2', f'--process_id={index}',
          f'--config.mesh.fsdp={FLAGS.fsdp}']


def _start_pair(workdir, steps, port, env, extra=('--config.train.'
                                                  'log_every=1',)):
  return [subprocess.Popen(
      _command(workdir, steps) + _pair_flags(port, i) + list(extra),
      cwd=ROOT, env=dict(env, JAX_NUM_CPU_DEVICES='4'),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
          for i in range(2)]


def _saved_step(output: str) -> int | None:
  found = re.search(r'saved step (\d+)', output)
  return int(found.group(1)) if found else None


def preempt_one(root, steps, env) -> bool:
  """SIGTERM to process 1 alone mid-run: both save one step and exit 75;
  resumed, they match an uninterrupted pair record for record."""
  stopped = os.path.join(root, 'stopped')
  procs = _start_pair(stopped, steps, _free_port(), env)
  _wait_for_a_step(stopped, procs)
  procs[1].send_signal(signal.SIGTERM)
  outputs = [p.communicate(timeout=300)[0] for p in procs]
  codes = [p.returncode for p in procs]
  saved = [_saved_step(o) for o in outputs]
  print(f'SIGTERM to process 1 only: exit statuses {codes}, saved steps '
        f'{saved}')
  if codes != [75, 75] or saved[0] is None or saved[0] != saved[1]:
    print(outputs[0][-2000:], outputs[1][-2000:])
    return False
  resumed = _start_pair(stopped, steps, _free_port(), env)
  outputs = [p.communicate(timeout=600)[0] for p in resumed]
  if any(p.returncode for p in resumed):
    for i, (p, output) in enumerate(zip(resumed, outputs, strict=True)):
      lines = [line for line in output.splitlines()
               if not line.startswith(('[Gloo]', 'step ', 'I'))]
      print(f'resumed process {i} exited with status {p.returncode}:\n'
            + '\n'.join(lines[-5:]))
    return False
  reference = _uninterrupted(root, steps, env)
  a, b = _losses(stopped), _losses(reference)
  same = a.shape == b.shape == (steps,) and np.allclose(a, b, rtol=FLAGS.rtol)
  print(f'resumed pair: {len(a)} logged steps; against '
        f'{REFERENCES[FLAGS.against]}: {"match" if same else "MISMATCH"} '
        '(max relative '
        f'difference {np.max(np.abs(a - b) / np.abs(b)):.1e})')
  return same


REFERENCES = {'one_process': 'one uninterrupted 8-device process',
              'pair': 'an uninterrupted pair'}


def _uninterrupted(root, steps, env) -> str:
  """The workdir of the run --preempt_one's resumed pair must equal: one
  8-device process, as without --preempt_one (up to float32 reduction
  order), or with --against=pair two processes again (bit for bit up to
  the same, and the only reference for a run whose batches depend on the
  number of processes: data.draw=stream)."""
  if FLAGS.against == 'pair':
    workdir = os.path.join(root, 'uninterrupted_pair')
    if any(p.wait(timeout=600)
           for p in _start_pair(workdir, steps, _free_port(), env)):
      sys.exit('an uninterrupted distributed process failed')
    return workdir
  workdir = os.path.join(root, 'one_process')
  subprocess.run(_command(workdir, steps) + ['--config.train.log_every=1'],
                 cwd=ROOT, check=True, env=dict(env, JAX_NUM_CPU_DEVICES='8'))
  return workdir


def _wait_for_a_step(workdir, procs):
  metrics = os.path.join(workdir, reporting.METRICS_FILE)
  deadline = time.monotonic() + 300
  while not (os.path.exists(metrics) and os.path.getsize(metrics)):
    if time.monotonic() > deadline or procs[0].poll() is not None:
      break
    time.sleep(0.05)


def stop_one(root, how, peer_timeout, env) -> bool:
  """Process 1 hangs (SIGSTOP) or dies (SIGKILL) mid-run: process 0 must
  end within the peer timeout (and a margin for the checks' period) with
  one line of its own, never wait silently."""
  workdir = os.path.join(root, f'stop_one_{how}')
  procs = _start_pair(workdir, 100_000, _free_port(), env, (
      '--config.train.log_every=1', f'--peer_timeout={peer_timeout}'))
  _wait_for_a_step(workdir, procs)
  sent = time.monotonic()
  procs[1].send_signal(signal.SIGSTOP if how == 'hang' else signal.SIGKILL)
  try:
    output = procs[0].communicate(timeout=4 * peer_timeout + 60)[0]
  except subprocess.TimeoutExpired:
    output = None
  took = time.monotonic() - sent
  for p in procs:
    p.kill()
    p.wait()
  if output is None:
    print(f'process 0 still running {took:.0f} s after process 1 stopped')
    return False
  # Its own lines: all but the step logs and Gloo's connection notices.
  lines = [line for line in output.splitlines() if line.strip()
           and not line.startswith(('[Gloo]', 'step '))]
  print(f'process 1 {"stopped (SIGSTOP)" if how == "hang" else "killed"}: '
        f'process 0 exited with status {procs[0].returncode} after '
        f'{took:.1f} s (--peer_timeout={peer_timeout}), printing '
        f'{len(lines)} line(s):')
  print('\n'.join(lines[-20:]))
  return (procs[0].returncode == 1 and len(lines) == 1
          and took < peer_timeout + 30)


def main(argv):
  cli.check_no_arguments(argv)
  for override in FLAGS.set:
    if '=' not in override:
      sys.exit(f'--set {override!r}: expected KEY=VALUE, e.g. '
               'data.draw=epochs.')
  steps = FLAGS.steps
  root = FLAGS.workdir or tempfile.mkdtemp(prefix='multihost_')
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  if FLAGS.stop_one:
    ok = stop_one(root, FLAGS.stop_one, FLAGS.peer_timeout, env)
    print('STOPPED IN ONE LINE' if ok else 'FAILED')
    sys.exit(0 if ok else 1)
  if FLAGS.preempt_one:
    ok = preempt_one(root, steps, env)
    print('MATCH' if ok else 'MISMATCH')
    sys.exit(0 if ok else 1)
  port = _free_port()
  multi = os.path.join(root, 'two_processes')
  procs = [subprocess.Popen(
      _command(multi, steps) + _pair_flags(port, i),
      cwd=ROOT, env=dict(env, JAX_NUM_CPU_DEVICES='4'))
           for i in range(2)]
  if any(p.wait(timeout=600) for p in procs):
    sys.exit('a distributed process failed')
  single = os.path.join(root, 'one_process')
  subprocess.run(_command(single, steps), cwd=ROOT, check=True,
                 env=dict(env, JAX_NUM_CPU_DEVICES='8'))
  a, b = _losses(multi), _losses(single)
  print(f'2 processes x 4 devices (fsdp={FLAGS.fsdp}): {a}\n'
        f'1 process  x 8 devices (fsdp=1): {b}')
  ok = a.shape == b.shape == (steps,) and np.allclose(a, b, rtol=FLAGS.rtol)
  print('MATCH' if ok else 'MISMATCH')
  sys.exit(0 if ok else 1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
