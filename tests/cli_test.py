"""The command line as a newcomer meets it, through the real entry points
(`python -m experiments.main`, `drift-jax`): every mistake is one line
naming the flag or key, `--help` shows the config, `--print_config` prints
it and runs nothing, and the run summary's data row is the leaderboard's.
"""

import json
import logging
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from drift_jax.config import config_lib
from drift_jax.train import checkpoint
from drift_jax.train import summary as summary_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = [sys.executable, '-m', 'experiments.main']
W = ['--workdir', '/nonexistent/never']  # a mistake stops before writing

# (argv tail, text the one line must contain).
MISTAKES = (
    (['--config', 'configs/toy2d.py', *W, '--config.train.steps=abc'],
     "--config.train.steps=abc: expects an integer, got 'abc'"),
    (['--config', 'configs/toy2d.py', *W, '--config.optim.lr=fast'],
     "--config.optim.lr=fast: expects a number, got 'fast'"),
    (['--config', 'configs/toy2d.py:datset=checkerboard', *W],
     "Unknown config argument 'datset' in 'datset=checkerboard' (did you "
     "mean 'dataset'?)"),
    (['--config', 'configs/gmm.py:dim=abc', *W],
     "Config argument 'dim' must be an integer, got 'abc'"),
    (['--config', 'configs/toy2d.py'], 'missing required flag --workdir'),
    ([*W], 'missing required flag --config'),
    (['--config', 'configs/toy2d.py', *W, '--foo'],
     "Unknown command line flag 'foo'"),
    (['--config', 'configs/nope.py', *W],
     "--config: no config file 'configs/nope.py'"),
    (['--config', 'configs/toy2d.py', *W, '--config.optim.lrr=1'],
     "unknown config key among ['--config.optim.lrr']: lrr (did you mean "
     "'lr'?)"),
)


def _start(argv, cwd=REPO, command=MAIN):
  env = dict(os.environ, JAX_NUM_CPU_DEVICES='1')
  return subprocess.Popen([*command, *argv], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process):
  out, err = process.communicate(timeout=240)
  return process.returncode, out, err


def test_every_command_line_mistake_is_one_line():
  # All at once: each process is ~3 s of imports.
  processes = [_start(argv) for argv, _ in MISTAKES]
  traced = _start([*MISTAKES[0][0], '--traceback'])
  failures = []
  for (argv, want), process in zip(MISTAKES, processes, strict=True):
    code, _, err = _finish(process)
    lines = err.strip().splitlines()
    if not (code == 1 and len(lines) == 1 and lines[0].startswith('error: ')
            and want in lines[0]):
      failures.append((argv, code, err[-600:]))
  assert not failures, failures
  code, _, err = _finish(traced)
  assert code != 0 and 'Traceback' in err  # --traceback keeps the trace


def test_help_shows_the_config_and_print_config_runs_nothing(tmp_path):
  helped = _start(['--config', 'configs/gmm.py', '--help'])
  printed = _start(['--config', 'configs/gmm.py:dim=3',
                    '--config.train.steps=7', '--print_config'])
  # The console script, from a directory outside the checkout (the config
  # path is found in the checkout).
  console = os.path.join(os.path.dirname(sys.executable), 'drift-jax')
  outside = _start(['train', '--config', 'configs/toy2d.py:runlocal',
                    '--print_config'], cwd=tmp_path, command=[console])
  code, out, err = _finish(helped)
  assert code == 0, err
  # The config file's arguments (its docstring) and every resolved key.
  assert 'Arguments: method (drifting | diffusion | dmd), dim' in out
  assert '--config.train.steps=' in out and '--[no]print_config' in out
  config = config_lib.load_config_file('configs/gmm.py')
  assert out.count('--config.') >= len(list(config_lib._flatten(
      config.to_dict()))) - len(config.defaults_by_method)
  code, out, err = _finish(printed)
  assert code == 0, err
  assert '--config.train.steps=7' in out and '--config.data.dim=3' in out
  code, out, err = _finish(outside)
  assert code == 0, err
  assert "--config.data.name='checkerboard'" in out
  assert os.listdir(tmp_path) == []  # nothing run, nothing written


def test_reading_a_checkpoint_logs_no_warning(tmp_path, caplog):
  # A teacher or encoder is read through a read-only manager; orbax's
  # warnings about it ("Given directory is read only") were noise.
  state = {'w': np.arange(3.0, dtype=np.float32)}
  manager = checkpoint.make_manager(str(tmp_path / 'ckpt'), max_to_keep=1)
  checkpoint.save(manager, 1, state)
  checkpoint.wait(manager)
  manager.close()
  with caplog.at_level(logging.INFO, logger='absl'):
    step, restored = checkpoint.restore_from(
        str(tmp_path / 'ckpt'),
        checkpoint.abstract_like(
            state, jax.sharding.SingleDeviceSharding(jax.devices()[0])))
  assert step == 1 and np.array_equal(restored['w'], state['w'])
  warnings = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING]
  assert not warnings, warnings


def test_the_summary_data_row_is_the_leaderboards():
  """README command 1's data row, recomputed by the run summary on the
  task's evaluation sets, is the leaderboard's: the same draws against the
  same held-out set (their energy distances equal the stored ones)."""
  config = config_lib.load_config_file('configs/toy2d.py:dataset=checker'
                                       'board')
  config.eval.seed = 1601
  # One floor draw instead of ten: the floor is not what is compared here,
  # and its ten 5,000-point distances were most of this test's time.
  config.eval.floor_draws = 1
  with open(os.path.join(REPO, 'results/core_v2/checkerboard/'
                         'data_row.json')) as f:
    stored = [d['eval/energy_distance'] for d in json.load(f)['draws']]
  stored = stored[:3]  # draw i is keyed by i alone: the first 3 of 10
  row = summary_lib.data_row(config, draws=len(stored),
                             key='eval/energy_distance')
  # Same draws, same sets: equal up to the float32 round-off of the O(1)
  # mean distances the energy distance subtracts (7e-8 measured between
  # XLA's optimised and unoptimised CPU builds); other draws differ by
  # ~1e-4, a hundred times the tolerance.
  np.testing.assert_allclose(row, stored, rtol=0, atol=1e-6)
  mean, low, high = summary_lib.mean_interval(row)
  lines = summary_lib.lines(config, {
      'step': 321, 'time/wall_seconds': 30.0, 'eval/energy_distance': 2e-3,
      'eval/energy_distance_floor': 5e-4, 'eval/num_samples': 5000}, row)
  assert 'lower is better' in lines[2] and '4.00x the floor' in lines[2]
  assert f'{mean:.2f}x [{low:.2f}, {high:.2f}]' in lines[3]


@pytest.mark.parametrize('metrics, want', [
    ({'eval/feature_fd': 3.0, 'eval/feature_fd_floor': 1.5,
      'eval/energy_distance': 9.0, 'eval/energy_distance_floor': 1.0},
     ('feature FD', 'eval/feature_fd', 2.0)),
    ({'eval/energy_distance': 9.0, 'eval/energy_distance_floor': 3.0},
     ('energy distance', 'eval/energy_distance', 3.0)),
])
def test_the_headline_is_the_metric_the_leaderboard_ranks_by(metrics, want):
  from drift_jax.train import reporting
  assert reporting.headline_metric(metrics) == want
