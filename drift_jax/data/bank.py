"""A per-class memory bank of real samples for data held in memory.

The drifting release keeps, on every host, a ring buffer of real samples per
class (its positives) and one of unconditional negatives, filled from the
data loader and sampled without replacement (Deng et al. 2026, App. A; its
`memory_bank.py`); the buffer is not checkpointed, so a resumed run draws
other batches. For data that fit in memory the buffer can be replaced by an
index: each class's rows are read in epochs, each epoch a permutation
seeded by (seed, class, epoch), and step t takes positions t P .. t P + P - 1
of that sequence. Every batch is then a function of (seed, step) alone: the
same on any number of devices and processes, exact on resume with nothing
to checkpoint, balanced by construction, and without replacement (no row
twice in a batch, every row once per epoch of its class). Unconditional
batches read all the training rows the same way.
"""

from __future__ import annotations

import functools

import numpy as np

# Salts of the permutations' seeds, so the class-balanced and the plain
# sequences of one seed are unrelated.
CLASS_SALT = 0xBA4C
PLAIN_SALT = 0x5A3E


@functools.lru_cache(maxsize=64)
def _permutation(seed: int, salt: int, stream: int, epoch: int,
                 n: int) -> np.ndarray:
  return np.random.default_rng([seed, salt, stream, epoch]).permutation(n)


def epoch_positions(seed: int, salt: int, stream: int, n: int, start: int,
                    count: int) -> np.ndarray:
  """Rows (in 0..n-1) at positions start .. start + count - 1 of stream
  `stream`'s sequence of epochs, each a permutation of range(n) seeded by
  (seed, salt, stream, epoch)."""
  if n < 1:
    raise ValueError(f'Cannot draw from an empty set of rows (stream '
                     f'{stream}).')
  positions = np.arange(start, start + count)
  epochs, offsets = np.divmod(positions, n)
  out = np.empty(count, np.int64)
  for epoch in np.unique(epochs):
    where = epochs == epoch
    out[where] = _permutation(seed, salt, stream, int(epoch), n)[
        offsets[where]]
  return out


def class_balanced_indices(members, seed: int, step: int,
                           per_class: int) -> np.ndarray:
  """[C P] training rows of step `step`, class-major: P rows of each class
  c, read from `members[c]` (its rows) in seeded epochs."""
  return np.concatenate([
      rows[epoch_positions(seed, CLASS_SALT, c, len(rows), step * per_class,
                           per_class)]
      for c, rows in enumerate(members)])


def plain_indices(num_rows: int, seed: int, step: int,
                  batch_size: int) -> np.ndarray:
  """[B] training rows of step `step`, read in seeded epochs of all
  `num_rows` rows."""
  return epoch_positions(seed, PLAIN_SALT, 0, num_rows, step * batch_size,
                         batch_size)
