"""The in-memory per-class bank (`data.draw='epochs'`, `data.bank`): batches
are a function of (seed, step) on any number of devices and processes,
exact on resume, balanced as declared, and drawn without replacement."""

import collections

import jax
import ml_collections
import numpy as np
import pytest

from drift_jax import methods
from drift_jax.data import bank
from drift_jax.data import datasets as data_lib
from drift_jax.parallel import sharding as parallel


def _digits():
  config = ml_collections.ConfigDict(dict(
      name='digits', path='', key='', held_out_fraction=0.2, image_size=8))
  return data_lib.make_dataset(config, eval_size=100, seed=0)


def _batches(dataset, devices=1, class_balanced=True, **kwargs):
  kwargs = dict(batch_size=40, steps_per_call=2, seed=3) | kwargs
  return data_lib.make_batch_fn(dataset, parallel.make_mesh(devices),
                                class_balanced=class_balanced,
                                draw='epochs', **kwargs)


def _rows_of(dataset, x):
  """Training-row index of each row of x [n, D] (rows are unique)."""
  lookup = {row.tobytes(): i for i, row in enumerate(dataset.train)}
  return np.array([lookup[row.tobytes()] for row in x])


@pytest.mark.parametrize('class_balanced', [True, False])
def test_batches_are_a_function_of_seed_and_step(class_balanced):
  """1 and 8 devices, and a batch function made afresh (a resumed run)
  that never drew the earlier steps: the same rows."""
  dataset = _digits()
  first = _batches(dataset, 1, class_balanced)
  for step in (0, 2, 4):
    want = jax.device_get(first(step))
  fresh = jax.device_get(_batches(dataset, 8, class_balanced)(4))
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(fresh),
                  strict=True):
    np.testing.assert_array_equal(a, b)
  other_seed = jax.device_get(_batches(dataset, 1, class_balanced,
                                       seed=4)(4))
  assert not np.array_equal(jax.tree.leaves(other_seed)[-1],
                            jax.tree.leaves(want)[-1])


def test_two_processes_load_the_halves_of_one_batch(monkeypatch):
  """Each of 2 processes loads only its half of the global batch; the
  halves, put together, are the 1-process batch."""
  dataset = _digits()
  whole = jax.device_get(_batches(dataset)(6))
  monkeypatch.setattr(parallel, 'host_local_to_global',
                      lambda local, mesh, leading_axes=0: local)
  mesh = parallel.make_mesh(1)
  halves = []
  for index in (0, 1):
    monkeypatch.setattr(jax, 'process_count', lambda: 2)
    monkeypatch.setattr(jax, 'process_index', lambda i=index: i)
    halves.append(data_lib.make_batch_fn(
        dataset, mesh, batch_size=40, steps_per_call=2, seed=3,
        class_balanced=True, draw='epochs')(6))
  for key in ('x', 'labels'):
    np.testing.assert_array_equal(
        np.concatenate([h[key] for h in halves], axis=1), whole[key])


def test_classes_are_balanced_as_declared_and_drawn_without_replacement():
  """P = 4 rows of each class a step, class-major, each a training row of
  its declared label; over the steps that cover a class once, each of its
  rows comes exactly once."""
  dataset = _digits()
  members = [np.flatnonzero(dataset.labels == c) for c in range(10)]
  smallest = min(len(m) for m in members)
  fn = _batches(dataset, steps_per_call=1)
  seen = collections.defaultdict(list)
  steps = smallest // 4
  for step in range(steps):
    batch = jax.device_get(fn(step))
    labels = batch['labels'][0]
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 4))
    rows = _rows_of(dataset, batch['x'][0])
    np.testing.assert_array_equal(dataset.labels[rows], labels)
    for c in range(10):
      seen[c].extend(rows[labels == c])
  for c in range(10):
    assert len(set(seen[c])) == len(seen[c]) == 4 * steps, c


def test_epochs_are_permutations_that_change():
  """`epoch_positions` over two epochs of 7 rows: each epoch a permutation
  of 0..6, the second another one; a window across the boundary joins
  them."""
  rows = bank.epoch_positions(0, 1, 2, 7, 0, 14)
  assert sorted(rows[:7]) == sorted(rows[7:]) == list(range(7))
  assert list(rows[:7]) != list(rows[7:])
  np.testing.assert_array_equal(bank.epoch_positions(0, 1, 2, 7, 5, 4),
                                rows[5:9])


def test_plain_draws_keep_their_rows():
  """`data.draw='replacement'` (the default) draws what every stored
  result was trained on: numpy's integers from (seed, step)."""
  dataset = _digits()
  fn = data_lib.make_batch_fn(dataset, parallel.make_mesh(1), batch_size=8,
                              steps_per_call=1, seed=3)
  rows = _rows_of(dataset, np.asarray(fn(5))[0])
  np.testing.assert_array_equal(rows, np.random.default_rng([3, 5]).integers(
      0, len(dataset.train), 8))


def test_a_bad_draw_names_the_key():
  config = methods.base_config()
  config.data.draw = 'shuffle'
  with pytest.raises(ValueError, match='data.draw'):
    data_lib.for_run(config)
  config.data.draw = 'stream'  # per class: a class-conditional run only
  with pytest.raises(ValueError, match="data.draw='stream'.*conditional"):
    data_lib.for_run(config)


# ----------------------------------------------- the streaming bank

def _labelled_rows(n=120, classes=3):
  """A dataset whose row i is [i, i, i] (rows unique, their index readable)
  with class i % classes."""
  rows = np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1)
  return data_lib.Dataset(name='rows', dim=3, held_out=rows[:4],
                          floor_reference=rows[:4], train=rows,
                          labels=np.arange(n) % classes)


def _bank(dataset, **kwargs):
  from drift_jax.data import stream
  kwargs = dict(seed=3, batch_size=12, capacity=8, push=6) | kwargs
  return stream.StreamingBank(dataset, **kwargs)


def test_the_streaming_banks_state_survives_a_checkpoint(tmp_path):
  """Saved after 3 steps and loaded into a fresh bank, the next steps are
  the uninterrupted bank's; a fresh bank refuses to start mid-stream."""
  from drift_jax.data import stream
  data = _labelled_rows()
  bank = _bank(data)
  for step in range(3):
    bank(step)
  stream.save(str(tmp_path), 3, bank)
  want = [bank(step)[0] for step in (3, 4, 5)]
  fresh = _bank(data)
  with pytest.raises(ValueError, match='restore its state'):
    fresh(3)
  stream.load(str(tmp_path), 3, fresh)
  for step, rows in zip((3, 4, 5), want, strict=True):
    np.testing.assert_array_equal(fresh(step)[0], rows)
  with pytest.raises(FileNotFoundError, match='step 4'):
    stream.load(str(tmp_path), 4, fresh)


def test_the_streaming_bank_is_balanced_and_draws_without_replacement():
  data = _labelled_rows()
  bank = _bank(data)
  for step in range(10):
    rows, labels = bank(step)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(3), 4))
    index = rows[:, 0].astype(int)
    np.testing.assert_array_equal(data.labels[index], labels)
    for c in range(3):  # no row twice in a class's draw
      assert len(set(index[labels == c])) == 4


def test_two_processes_stream_disjoint_shards():
  """Each process's grain shard: together one epoch of every row, no row
  in both; each draws its half of the class-major batch."""
  data = _labelled_rows()
  shards = [_bank(data, process_index=i, process_count=2) for i in (0, 1)]
  firsts = [set(int(r) for r in b._epoch(0)) for b in shards]  # noqa: SLF001
  assert not firsts[0] & firsts[1]
  assert firsts[0] | firsts[1] == set(range(len(data.train)))
  for index, shard in enumerate(shards):
    _, labels = shard(0)
    np.testing.assert_array_equal(
        labels, np.repeat(np.arange(3), 4)[6 * index:6 * (index + 1)])
