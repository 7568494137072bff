"""Samples from a trained run: `sampling.load_generator` and the
`experiments.sample` command, on finished and interrupted workdirs."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from drift_jax.train import runner
from drift_jax.train import sampling
from drift_jax.train import workdir as workdir_lib
from tests.runner_helpers import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """A tiny DMD run with EMA and a teacher trained in its workdir,
  finished, its samples.npy kept (one run serves every test here)."""
  workdir = str(tmp_path_factory.mktemp('run') / 'dmd')
  config = tiny_config('dmd', 'two_moons', steps=4, ema_decay=0.9)
  config.dmd.teacher = 'train'
  runner.train_and_evaluate(config, workdir)
  return workdir


def test_the_generator_reproduces_the_runs_last_samples(finished):
  teacher = os.path.join(finished, workdir_lib.TEACHER_DIR)
  budget = workdir_lib.read_budget(teacher)
  generator = sampling.load_generator(finished)
  saved = np.load(os.path.join(finished, runner.SAMPLES_FILE))
  samples = generator.sample(len(saved))
  assert generator.finished and generator.step == 4 and generator.ema
  # The evaluation's key and EMA parameters; 8 devices there, 1 here.
  np.testing.assert_allclose(samples, saved, rtol=0, atol=1e-6)
  assert workdir_lib.read_budget(teacher) == budget  # loaded, not trained
  raw = sampling.load_generator(finished, ema=False).sample(len(saved))
  assert np.abs(raw - saved).max() > 1e-4  # raw weights are not the EMA
  other = generator.sample(len(saved), seed=3)
  assert np.abs(other - saved).max() > 1e-3
  with pytest.raises(ValueError, match='`n` must be a positive integer'):
    generator.sample(0)
  with pytest.raises(ValueError,
                     match='`guidance` applies to class-conditional runs'):
    sampling.load_generator(finished, guidance=2.0)


def test_an_unfinished_teacher_is_refused_never_trained(finished,
                                                        tmp_path):
  workdir = str(tmp_path / 'copy')
  shutil.copytree(finished, workdir)
  teacher = os.path.join(workdir, workdir_lib.TEACHER_DIR)
  budget = workdir_lib.read_budget(teacher)
  saved_teacher = workdir_lib.read_config(teacher)
  saved_teacher['train']['steps'] += 5
  workdir_lib.write_json(os.path.join(teacher, workdir_lib.CONFIG_FILE),
                         saved_teacher)
  with pytest.raises(ValueError, match='Teacher .* is unfinished'):
    sampling.load_generator(workdir)
  assert workdir_lib.read_budget(teacher) == budget


def test_an_interrupted_run_samples_from_its_newest_checkpoint(finished,
                                                              tmp_path):
  # What a preempted longer run leaves: its config asks for more steps
  # than its newest checkpoint has.
  workdir = str(tmp_path / 'copy')
  shutil.copytree(finished, workdir)
  saved = workdir_lib.read_config(workdir)
  saved['train']['steps'] = 8
  workdir_lib.write_json(os.path.join(workdir, workdir_lib.CONFIG_FILE),
                         saved)
  before = sorted(os.listdir(workdir))
  generator = sampling.load_generator(workdir)
  assert generator.step == 4 and not generator.finished
  assert np.isfinite(generator.sample(16, seed=0)).all()
  assert sorted(os.listdir(workdir)) == before  # nothing written


def test_the_sample_command_writes_samples_labels_and_a_grid(finished,
                                                             tmp_path):
  out = tmp_path / 'out'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.sample', '--workdir', finished,
       '--num_samples', '32', '--seed', '1', '--out', str(out)], cwd=REPO,
      env=dict(os.environ, JAX_NUM_CPU_DEVICES='1'), capture_output=True,
      text=True, timeout=240)
  assert result.returncode == 0, result.stderr
  samples = np.load(out / 'samples.npy')
  want = sampling.load_generator(finished).sample(32, seed=1)
  np.testing.assert_allclose(samples, want, rtol=0, atol=1e-6)
  assert (out / 'samples.png').stat().st_size > 1000
  assert not (out / 'labels.npy').exists()  # unconditional
  missing = subprocess.run(
      [sys.executable, '-m', 'experiments.sample', '--workdir',
       str(tmp_path / 'none')], cwd=REPO, capture_output=True, text=True,
      timeout=240)
  assert missing.returncode == 1
  assert len(missing.stderr.strip().splitlines()) == 1
  assert 'has no config.json' in missing.stderr
