"""The runner end to end: parallel semantics, compiles, resume, smoke runs."""

import os

import numpy as np
import pytest

from drift_jax.data import datasets as data_lib
from drift_jax.train import checkpoint
from drift_jax.train import runner
from drift_jax.train import workdir as workdir_lib
from tests.runner_helpers import losses
from tests.runner_helpers import tiny_config


def _trajectory(tmp_path, name, num_devices, scope):
  c = tiny_config(steps=3, eval_every=3, checkpoint_every=3)
  c.mesh.num_devices = num_devices
  c.drifting.negatives_scope = scope
  workdir = os.path.join(tmp_path, name)
  runner.train_and_evaluate(c, workdir)
  return np.array([losses(workdir)[s] for s in (1, 2, 3)])


def test_global_negatives_trajectory_is_device_count_invariant(tmp_path):
  ref = _trajectory(tmp_path, 'g1', 1, 'global')
  for n in (2, 4, 8):
    got = _trajectory(tmp_path, f'g{n}', n, 'global')
    # Same maths; only the order of the gradient all-reduce sums changes,
    # so float32 agreement to a few ulps of the loss.
    np.testing.assert_allclose(got, ref, rtol=2e-5, err_msg=f'{n} devices')


def test_local_negatives_trajectory_depends_on_device_count(tmp_path):
  one = _trajectory(tmp_path, 'l1', 1, 'local')
  glob = _trajectory(tmp_path, 'g1', 1, 'global')
  np.testing.assert_allclose(one, glob, rtol=2e-5)  # 1 shard = global
  eight = _trajectory(tmp_path, 'l8', 8, 'local')
  # 8 devices x 8 samples: each field sees only its own 8 negatives.
  assert np.max(np.abs(eight - one) / one) > 1e-2


def test_step_compiles_once_and_steps_per_call_matches(tmp_path):
  single = runner.train_and_evaluate(
      tiny_config(steps=6), os.path.join(tmp_path, 'k1'))
  assert single['num_compiles'] == 1
  scanned = runner.train_and_evaluate(
      tiny_config(steps=6, steps_per_call=3, log_every=3, eval_every=3),
      os.path.join(tmp_path, 'k3'))
  assert scanned['num_compiles'] == 1
  # lax.scan of 3 steps per dispatch walks the same trajectory.
  np.testing.assert_allclose(losses(os.path.join(tmp_path, 'k3'))[6],
                             losses(os.path.join(tmp_path, 'k1'))[6],
                             rtol=1e-5)


def test_resume_on_one_device_continues_eight_device_run(tmp_path):
  full = os.path.join(tmp_path, 'full')
  c = tiny_config(steps=6)
  c.mesh.num_devices = 1
  runner.train_and_evaluate(c, full)

  split = os.path.join(tmp_path, 'split')
  first = tiny_config(steps=3)  # all 8 devices, checkpoint at step 3
  runner.train_and_evaluate(first, split)
  second = tiny_config(steps=6)
  second.mesh.num_devices = 1
  summary = runner.train_and_evaluate(second, split)
  assert summary['step'] == 6
  want, got = losses(full), losses(split)
  assert sorted(got) == list(range(1, 7))  # no duplicated records
  np.testing.assert_allclose([got[s] for s in (4, 5, 6)],
                             [want[s] for s in (4, 5, 6)], rtol=2e-5)
  ckpts = checkpoint.saved_steps(os.path.join(split, runner.CHECKPOINT_DIR))
  assert ckpts == [3, 6]


def test_finished_run_is_not_retrained(tmp_path):
  c = tiny_config(steps=3)
  first = runner.train_and_evaluate(c, str(tmp_path))
  again = runner.train_and_evaluate(c, str(tmp_path))
  assert again['step'] == 3 and again['num_compiles'] == 0
  assert again['eval/energy_distance'] == first['eval/energy_distance']


@pytest.mark.parametrize('method,dataset,teacher', [
    ('drifting', 'checkerboard', None),
    ('diffusion', 'swiss_roll', None),
    ('dmd', 'eight_gaussians', 'oracle'),
    ('dmd', 'two_moons', 'train'),
])
def test_smoke_run_writes_metrics_plots_checkpoints(tmp_path, method,
                                                    dataset, teacher):
  c = tiny_config(method, dataset)
  c.eval.plot = True
  if teacher:
    c.dmd.teacher = teacher
  workdir = str(tmp_path)
  summary = runner.train_and_evaluate(c, workdir)
  assert summary['step'] == c.train.steps
  for key in ('train/loss', 'eval/energy_distance',
              'eval/energy_distance_floor', 'eval/mmd2', 'eval/mmd2_floor'):
    assert np.isfinite(summary[key]), key
  assert summary['eval/energy_distance_floor'] > 0
  assert sorted(losses(workdir)) == list(range(1, c.train.steps + 1))
  for name in ('samples.png', 'metrics.jsonl', 'config.json', 'budget.json',
               runner.SAMPLES_FILE):
    assert os.path.isfile(os.path.join(workdir, name)), name
  assert os.listdir(os.path.join(workdir, 'tensorboard'))
  # Mixture data add the mode metrics; other data do not.
  mixture_keys = {'eval/modes_covered', 'eval/high_quality_fraction',
                  'eval/mode_mass_error', 'eval/log_likelihood'}
  if dataset == 'eight_gaussians':
    assert mixture_keys <= set(summary)
    assert 0 <= summary['eval/modes_covered'] <= 8
  else:
    assert not mixture_keys & set(summary)
  assert os.listdir(os.path.join(workdir, runner.CHECKPOINT_DIR))
  if teacher == 'train':
    teacher_dir = os.path.join(workdir, 'teacher')
    assert summary['budget/teacher_steps'] == c.dmd.teacher_steps
    assert summary['time/teacher_wall_seconds'] > 0
    assert (summary['time/total_wall_seconds']
            > summary['time/teacher_wall_seconds'])
    assert os.listdir(os.path.join(teacher_dir, runner.CHECKPOINT_DIR))
    # The student's checkpoints hold the generator and fake denoiser only.
    assert checkpoint.saved_keys(
        os.path.join(workdir, runner.CHECKPOINT_DIR)) == {'gen', 'fake'}



def test_failing_run_keeps_written_checkpoints_and_resumes(tmp_path,
                                                           monkeypatch):
  real_plot = runner._plot

  def plot_that_fails_late(config, workdir, samples, dataset, step, m):
    if step == 6:
      raise RuntimeError('disk full')
    real_plot(config, workdir, samples, dataset, step, m)

  monkeypatch.setattr(runner, '_plot', plot_that_fails_late)
  c = tiny_config(steps=6)
  c.eval.plot = True
  with pytest.raises(RuntimeError, match='disk full'):
    runner.train_and_evaluate(c, str(tmp_path))
  assert checkpoint.saved_steps(str(tmp_path / runner.CHECKPOINT_DIR)) == [3]
  monkeypatch.setattr(runner, '_plot', real_plot)
  summary = runner.train_and_evaluate(c, str(tmp_path))
  assert summary['step'] == 6 and summary['num_compiles'] == 1


def test_nan_loss_stops_the_run_with_a_clear_error(tmp_path):
  c = tiny_config(steps=6)
  c.optim.lr = 1e30  # parameters overflow within a step or two
  with pytest.raises(FloatingPointError, match='train/loss is nan'):
    runner.train_and_evaluate(c, str(tmp_path))


def test_point_cloud_file_trains_and_is_device_count_invariant(tmp_path):
  """dataset=file: each process gathers its rows of a (seed, step)-keyed
  global batch; 1 and 8 devices see the same batches."""
  cloud = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
  np.save(tmp_path / 'cloud.npy', cloud)
  got = []
  for n in (1, 8):
    c = tiny_config(dataset='file', steps=3, eval_every=3)
    c.data.path = str(tmp_path / 'cloud.npy')
    c.mesh.num_devices = n
    workdir = str(tmp_path / f'run{n}')
    summary = runner.train_and_evaluate(c, workdir)
    # 20% held out (100 rows): evaluation uses all of them.
    assert summary['eval/num_samples'] == 100
    got.append([losses(workdir)[s] for s in (1, 2, 3)])
  np.testing.assert_allclose(got[0], got[1], rtol=2e-5)


def test_fixed_eval_seed_gives_every_run_the_same_sets(tmp_path):
  """eval.seed >= 0: held-out and floor sets (and a file's split) do not
  depend on the run's seed; -1 (default) keeps them per seed."""
  np.save(tmp_path / 'cloud.npy',
          np.random.default_rng(0).normal(size=(400, 2)).astype(np.float32))
  for name in ('checkerboard', 'file'):
    sets = {}
    for eval_seed in (-1, 7):
      for seed in (0, 1):
        c = tiny_config(dataset=name)
        c.data.path = str(tmp_path / 'cloud.npy')
        c.seed, c.eval.seed = seed, eval_seed
        d = data_lib.for_run(c)
        sets[eval_seed, seed] = (d.held_out, d.floor_reference)
    for i in (0, 1):
      np.testing.assert_array_equal(sets[7, 0][i], sets[7, 1][i])
      assert not np.array_equal(sets[-1, 0][i], sets[-1, 1][i])
  assert workdir_lib.config_changes({'eval': {'seed': -1}},
                                    {'eval': {'seed': 3}}) == [
                                        'eval.seed: -1 -> 3']
