"""A workdir in a bucket (`train/mirror.py`): trained in a local copy,
pulled first and pushed after each recorded save, so a new machine resumes
from the bucket. `gs://bucket` is a folder here (etils' own epath mock):
nothing leaves the machine."""

import contextlib
import importlib.util
import os

import numpy as np
import pytest
from etils.epath import testing as epath_testing

from drift_jax.train import mirror
from drift_jax.train import runner
from drift_jax.train import sampling
from drift_jax.train import workdir as workdir_lib
from tests.runner_helpers import losses
from tests.runner_helpers import tiny_config

BUCKET = 'gs://bucket'


@contextlib.contextmanager
def fake_bucket(root):
  """Every epath call on gs://bucket/... acts on `root`/... instead."""
  root = str(root)
  to_local = lambda p: os.fspath(p).replace(BUCKET, root, 1)
  to_remote = lambda p: os.fspath(p).replace(root, BUCKET, 1)

  def one(fn, path, *args, **kwargs):
    return fn(to_local(path), *args, **kwargs)

  def two(fn, path, dst, *args, **kwargs):
    return fn(to_local(path), to_local(dst), *args, **kwargs)

  def walk(fn, top, **kwargs):
    for folder, dirs, files in fn(to_local(top), **kwargs):
      yield to_remote(folder), dirs, files

  with epath_testing.mock_epath(
      open=one, exists=one, isdir=one, listdir=one, makedirs=one, mkdir=one,
      remove=one, rmtree=one, stat=one, glob=one, walk=walk, copy=two,
      rename=two, replace=two):
    yield


def _tree(root):
  return {os.path.relpath(os.path.join(d, f), root)
          for d, _, fs in os.walk(root) for f in fs}


def test_sync_copies_what_changed_in_order_and_removes_what_is_gone(
    tmp_path, monkeypatch):
  src, dst = tmp_path / 'src', tmp_path / 'dst'
  (src / 'checkpoints' / '4').mkdir(parents=True)
  files = {'budget.json': '{"steps": 4}', 'metrics.jsonl': 'a\n',
           'checkpoints/4/array': 'x' * 10, 'checkpoints/4.digest.json': '{}',
           'lock': '', 'lock.owner': '{}', 'config.json.tmp.12': 'partial'}
  for name, text in files.items():
    (src / name).write_text(text)
  copied = []
  real = mirror._copy  # noqa: SLF001

  def record(a, b):
    copied.append(os.path.relpath(os.fspath(b), dst))
    real(a, b)
  monkeypatch.setattr(mirror, '_copy', record)
  assert mirror.sync(src, dst) == 4
  # Arrays, then their digest, then budget.json (which names them); no
  # lock and no temporary file.
  assert copied == ['checkpoints/4/array', 'metrics.jsonl',
                    'checkpoints/4.digest.json', 'budget.json']
  copied.clear()
  (src / 'budget.json').write_text('{"steps": 8}')  # same size, same second
  (src / 'metrics.jsonl').write_text('a\nb\n')
  assert mirror.sync(src, dst) == 2 and sorted(copied) == [
      'budget.json', 'metrics.jsonl']
  assert (dst / 'budget.json').read_text() == '{"steps": 8}'
  (src / 'checkpoints' / '4' / 'array').unlink()
  mirror.sync(src, dst)
  assert 'checkpoints/4/array' not in _tree(dst)
  (dst / 'only_remote').write_text('kept')
  mirror.sync(dst, src, delete=False)
  assert (src / 'only_remote').read_text() == 'kept'
  assert mirror.is_remote('gs://b/r') and not mirror.is_remote('/tmp/r')
  if not any(importlib.util.find_spec(m) for m in ('gcsfs', 'tensorflow')):
    # Without a gs:// backend, one line naming the workdir.
    with pytest.raises(ValueError, match="'gs://b/r' cannot be reached"):
      mirror.pull('gs://b/r', str(tmp_path / 'unreachable'))
  assert mirror.local_dir('gs://b/r') != mirror.local_dir('gs://b/r2')


def test_a_run_in_a_bucket_resumes_there_on_a_new_machine(tmp_path,
                                                           monkeypatch):
  """4 steps into gs://bucket/run from one machine's cache, then 8 from a
  fresh cache (another machine): it resumes at step 4 from the bucket and
  walks the uninterrupted local run's losses; the bucket holds the run."""
  config = lambda steps: tiny_config(steps=steps, log_every=1, eval_every=4,
                                     checkpoint_every=4)
  local = str(tmp_path / 'local')
  runner.train_and_evaluate(config(8), local)
  with fake_bucket(tmp_path / 'bucket'):
    monkeypatch.setenv(mirror.CACHE_ENV, str(tmp_path / 'machine1'))
    runner.train_and_evaluate(config(4), f'{BUCKET}/run')
    stored = _tree(tmp_path / 'bucket' / 'run')
    assert {'config.json', 'budget.json', 'metrics.jsonl',
            'checkpoints/4.digest.json'} <= stored
    assert workdir_lib.LOCK_FILE not in stored
    monkeypatch.setenv(mirror.CACHE_ENV, str(tmp_path / 'machine2'))

    def no_fresh_start(*args, **kwargs):
      raise AssertionError('initialised instead of resuming from step 4')
    monkeypatch.setattr(runner, 'init_state', no_fresh_start)
    summary = runner.train_and_evaluate(config(8), f'{BUCKET}/run')
    # Sampling reads the run from the bucket (a third machine's cache).
    monkeypatch.setenv(mirror.CACHE_ENV, str(tmp_path / 'machine3'))
    remote_samples = sampling.load_generator(f'{BUCKET}/run').sample(16, 0)
  assert summary['step'] == 8
  np.testing.assert_array_equal(
      remote_samples, sampling.load_generator(local).sample(16, 0))
  resumed = losses(str(tmp_path / 'bucket' / 'run'))
  assert resumed == losses(local)
  assert workdir_lib.read_budget(str(tmp_path / 'bucket' / 'run'))[
      'steps'] == 8
