"""Kernel Inception Distance in the evaluation classifier's features, with
its standard error, and per-class Frechet distances for conditional runs.

KID (Binkowski et al. 2018, §3 and App. D): the unbiased estimate of the
squared MMD under the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3,
    MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j)
              - 2 mean_{i, j} k(x_i, y_j).
Unlike FD it has an unbiased estimator, so small sample sets are comparable.
Here it is computed on `KID_BLOCKS` disjoint blocks of the samples and the
held-out features, and reported as the blocks' mean (`eval/kid`, itself
unbiased) with the standard error of that mean (`eval/kid_se`, from the
blocks' spread: they are independent). `eval/kid_floor` scores training
images against the held-out ones the same way. The features are the
evaluation classifier's (not Inception's), so the values are not
comparable to published KIDs.

Per-class FD (class-conditional runs): the Frechet distance between the
samples generated for class c and the held-out images of class c, averaged
over classes (`eval/class_fd_mean`) and its worst class
(`eval/class_fd_max`).
"""

from __future__ import annotations

import numpy as np

from drift_jax.data import datasets as data_lib
from drift_jax.evaluators import image_eval
from drift_jax.evaluators import sample_metrics
from drift_jax.evaluators.metric import Evaluator
from drift_jax.evaluators.metric import Metric

KID_BLOCKS = 10
MIN_BLOCK = 2  # the unbiased within-set means need two rows


def polynomial_kernel(a, b):
  """k(x, y) = (x.y / d + 1)^3 between rows of a [m, d] and b [n, d]."""
  return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
  """The unbiased squared MMD of two feature sets (module docstring)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  m, n = len(x), len(y)
  if m < MIN_BLOCK or n < MIN_BLOCK:
    raise ValueError(f'KID needs >= {MIN_BLOCK} rows per set, got {m}, {n}.')
  kxx, kyy = polynomial_kernel(x, x), polynomial_kernel(y, y)
  within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
  within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
  return float(within_x + within_y - 2.0 * polynomial_kernel(x, y).mean())


def kid(x, y, blocks: int = KID_BLOCKS) -> tuple[float, float]:
  """(KID, its standard error): the mean of the unbiased MMD^2 over
  `blocks` disjoint blocks of x and y (fewer when the sets are small), and
  std / sqrt(blocks) of those independent estimates (nan for one block)."""
  blocks = max(1, min(blocks, len(x) // MIN_BLOCK, len(y) // MIN_BLOCK))
  values = [mmd2_unbiased(xb, yb) for xb, yb in zip(
      np.array_split(np.asarray(x), blocks),
      np.array_split(np.asarray(y), blocks), strict=True)]
  se = (float(np.std(values, ddof=1) / np.sqrt(blocks)) if blocks > 1
        else float('nan'))
  return float(np.mean(values)), se


class KIDMetrics(image_eval.ClassifierFeatures):
  """Callable samples [n, D] -> KID (and per-class FD) in the evaluation
  classifier's pooled features."""

  def __init__(self, classifier, dataset, *, num_classes: int = 0):
    super().__init__(classifier)
    self._num_classes = num_classes
    self._held_out = self._features(dataset.held_out)
    self._held_labels = dataset.held_out_labels
    value, se = kid(self._features(dataset.floor_reference), self._held_out)
    self.floors = {'eval/kid_floor': value, 'eval/kid_floor_se': se}

  def __call__(self, samples) -> dict:
    feats = self._features(samples)
    value, se = kid(feats, self._held_out)
    out = {'eval/kid': value, 'eval/kid_se': se, **self.floors}
    if self._num_classes and self._held_labels is not None:
      labels = np.asarray(data_lib.class_major_labels(len(samples),
                                                      self._num_classes))
      fds = [float(sample_metrics.frechet_distance(
          feats[labels == c], self._held_out[self._held_labels == c]))
             for c in range(self._num_classes)]
      out.update({'eval/class_fd_mean': float(np.mean(fds)),
                  'eval/class_fd_max': float(np.max(fds))})
    return out


def _make(dataset, config, *, classifier=None, num_classes=0):
  del config
  return KIDMetrics(classifier, dataset, num_classes=num_classes)


EVALUATOR = Evaluator(
    metrics=(
        # No `floor=`: an unbiased floor is ~0 and may be negative, so a
        # ratio to it means nothing; the floor is logged beside it.
        Metric('eval/kid', 'KID', kept=True, tabled=True),
        Metric('eval/kid_se', 'KID s.e.', kept=True),
        Metric('eval/kid_floor', 'KID floor', kept=True),
        Metric('eval/kid_floor_se', 'KID floor s.e.'),
        Metric('eval/class_fd_mean', 'per-class FD (mean)', kept=True,
               tabled=True),
        Metric('eval/class_fd_max', 'per-class FD (worst)', kept=True),
    ),
    needs=('classifier',), make=_make)
