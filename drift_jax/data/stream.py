"""The streaming per-class memory bank (`data.draw='stream'`): for data that
does not fit in memory.

The drifting release keeps on every host a ring buffer of real samples per
class, fills it from the host's data loader and samples positives from it
without replacement (Deng et al. 2026, App. A; its `memory_bank.py`). Its
buffer is not checkpointed, so a resumed run refills it and draws other
batches. Here:
- each process reads its own shard of the training rows through grain
  (`grain.MapDataset`: shuffled by a seed of its own each epoch, then
  sliced `process_index::process_count`); the rows are the in-memory
  dataset's, and a file-backed grain source in place of `MapDataset.range`
  is the case of data that does not fit;
- every step first pushes `data.bank_push` records into the rings of their
  classes (`data.bank_size` each, the oldest overwritten), filling until
  each ring can give a step's draw before the first one;
- then each process draws its rows of the class-major global batch, every
  class's rows without replacement from its ring, with a generator seeded
  by (seed, step, process);
- the whole state (the rings, their fill and write positions, the stream
  position and the step) is `state()`, which the runner saves with every
  checkpoint (`save` / `load`), so a resumed run draws exactly the batches
  of an uninterrupted one.
A batch depends on (seed, step) and on the number of processes (each owns
its shard and its rings); the in-memory bank (`data.bank`) is the one whose
batches are the same on any number of processes.
"""

from __future__ import annotations

import os

import grain
import jax
import numpy as np

from drift_jax.data import datasets as data_lib
from drift_jax.parallel import sharding as parallel

STATE_DIR = 'bank'
SALT = 0x57EA


class StreamingBank:
  """Per-process rings of real samples per class, fed by a grain stream."""

  def __init__(self, dataset, *, seed: int, batch_size: int, capacity: int,
               push: int, process_index: int = 0, process_count: int = 1):
    self.num_classes = dataset.num_classes
    if self.num_classes < 1:
      raise ValueError("`data.draw='stream'` is a per-class bank: it needs "
                       f'labelled data; {dataset.name!r} has no labels.')
    self._train, self._labels = dataset.train, dataset.labels
    self._seed, self._push = seed, push
    self._process = (process_index, process_count)
    labels = np.asarray(data_lib.class_major_labels(batch_size,
                                                    self.num_classes))
    local = batch_size // process_count
    self.local_labels = labels[process_index * local:
                               (process_index + 1) * local]
    wanted = np.bincount(self.local_labels, minlength=self.num_classes)
    if capacity < wanted.max():
      raise ValueError(f'`data.bank_size` = {capacity} is smaller than a '
                       f"step's draw of one class ({wanted.max()}).")
    self._wanted = wanted
    self._shard = len(range(process_index, len(self._train), process_count))
    dim = self._train.shape[1]
    self._rings = np.zeros((self.num_classes, capacity, dim),
                           self._train.dtype)
    self._filled = np.zeros(self.num_classes, np.int64)
    self._head = np.zeros(self.num_classes, np.int64)
    self._position = 0
    self._step = 0

  def _epoch(self, epoch: int):
    """This process's rows of epoch `epoch`: grain's seeded shuffle of all
    the rows, sliced to the process's shard."""
    index, count = self._process
    return grain.MapDataset.range(len(self._train)).shuffle(
        seed=int(np.random.default_rng([self._seed, SALT, epoch])
                 .integers(2**31)))[index::count]

  def _push_records(self, count: int) -> None:
    epoch, ring = None, None
    for _ in range(count):
      e, i = divmod(self._position, self._shard)
      if e != epoch:
        epoch, ring = e, self._epoch(e)
      row = ring[i]
      c = self._labels[row]
      self._rings[c, self._head[c]] = self._train[row]
      self._head[c] = (self._head[c] + 1) % self._rings.shape[1]
      self._filled[c] = min(self._filled[c] + 1, self._rings.shape[1])
      self._position += 1

  def __call__(self, step: int):
    """(x [B / processes, D], labels) of step `step`: this process's rows
    of the class-major global batch. Steps come in order (a stream)."""
    if step != self._step:
      raise ValueError(f'The streaming bank is at step {self._step}; asked '
                       f'for step {step} (restore its state to resume).')
    self._push_records(self._push)
    while np.any(self._filled < self._wanted):
      if self._position > 10 * len(self._train):
        raise ValueError('A class has too few rows for a step of the '
                         'streaming bank (data.bank_size, batch_size).')
      self._push_records(self._push)
    rng = np.random.default_rng([self._seed, step, *self._process, SALT])
    rows = [self._rings[c, rng.choice(self._filled[c], n, replace=False)]
            for c, n in enumerate(self._wanted) if n]
    self._step += 1
    return np.concatenate(rows), self.local_labels

  def state(self) -> dict:
    return {'rings': self._rings.copy(), 'filled': self._filled.copy(),
            'head': self._head.copy(),
            'position': np.asarray(self._position),
            'step': np.asarray(self._step)}

  def restore(self, state: dict) -> None:
    if state['rings'].shape != self._rings.shape:
      raise ValueError(f'A streaming bank state of shape '
                       f'{state["rings"].shape} does not fit this run\'s '
                       f'{self._rings.shape} (data.bank_size, classes).')
    self._rings[...] = state['rings']
    self._filled[...] = state['filled']
    self._head[...] = state['head']
    self._position = int(state['position'])
    self._step = int(state['step'])


def make_batch_fn(dataset, mesh, *, batch_size: int, steps_per_call: int,
                  seed: int, class_balanced: bool, capacity: int,
                  push: int):
  """batches(step) -> {'x': [k, B, D], 'labels': [k, B]} from this
  process's `StreamingBank` (`data.make_batch_fn`'s contract; the bank is
  `batches.bank`, whose state the runner saves and restores)."""
  if not class_balanced:
    raise ValueError("`data.draw='stream'` is a per-class bank: it needs "
                     'a class-conditional run (conditional.enabled).')
  parallel.check_divisible('train.batch_size', batch_size, mesh)
  source = StreamingBank(
      dataset, seed=seed, batch_size=batch_size, capacity=capacity,
      push=push, process_index=jax.process_index(),
      process_count=jax.process_count())

  def batches(step):
    xs, labels = zip(*(source(int(step) + i)
                       for i in range(steps_per_call)), strict=True)
    local = {'x': np.stack(xs), 'labels': np.stack(labels)}
    return {k: parallel.host_local_to_global(np.ascontiguousarray(v), mesh,
                                             leading_axes=1)
            for k, v in local.items()}

  batches.bank = source
  return batches


def _path(workdir: str, step: int, process_index: int) -> str:
  return os.path.join(workdir, STATE_DIR, f'step_{step}',
                      f'process_{process_index}.npz')


def save(workdir: str, step: int, bank: StreamingBank,
         process_index: int = 0, keep: int = 3) -> None:
  """This process's bank state at `step`, beside the run's checkpoint of
  that step (written whole, then renamed); the newest `keep` are kept."""
  path = _path(workdir, step, process_index)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez(path + '.tmp.npz', **bank.state())
  os.replace(path + '.tmp.npz', path)
  folder = os.path.join(workdir, STATE_DIR)
  steps = sorted(int(n.split('_')[1]) for n in os.listdir(folder)
                 if n.startswith('step_'))
  for old in steps[:-keep]:
    stale = _path(workdir, old, process_index)
    if os.path.exists(stale):
      os.remove(stale)


def load(workdir: str, step: int, bank: StreamingBank,
         process_index: int = 0) -> None:
  """Restores `bank` to its state at `step` (a resumed run's start);
  FileNotFoundError naming the file when that step's state is missing."""
  path = _path(workdir, step, process_index)
  if not os.path.exists(path):
    raise FileNotFoundError(f'The streaming bank state of step {step} '
                            f'({path}) is missing; the run cannot resume '
                            'its batches exactly.')
  with np.load(path) as stored:
    bank.restore({k: stored[k] for k in stored.files})
