"""Two local processes (jax.distributed, 4 CPU devices each) train the same
trajectory as one 8-device process: experiments/multihost_demo.py."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != 'JAX_NUM_CPU_DEVICES'}
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.multihost_demo', '--steps', '3',
       '--workdir', str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
      text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert 'MATCH' in result.stdout
  # Only process 0 wrote logs: one record per step, not two.
  with open(tmp_path / 'two_processes' / 'metrics.jsonl') as f:
    assert len(f.readlines()) == 3
