"""Intervals over seeds and paired comparisons, for tables that must say
whether a difference is real (scipy.stats).

A failed run (a non-finite metric: diverged, crashed) is never dropped
silently: it is counted in `Interval.failed` and excluded from the mean.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Interval:
  """Mean and two-sided Student-t interval of the finite values; `n` of
  them, `failed` non-finite ones left out. low = high = nan when n < 2."""
  mean: float
  low: float
  high: float
  n: int
  failed: int

  def __str__(self):
    if self.n == 0:
      return f'failed ({self.failed})'
    text = (f'{self.mean:.3g}' if self.n < 2 else
            f'{self.mean:.3g} [{self.low:.3g}, {self.high:.3g}]')
    return text + (f' ({self.failed} failed)' if self.failed else '')


def mean_interval(values, confidence: float = 0.95) -> Interval:
  """Mean +- t_{(1+c)/2, n-1} s / sqrt(n) over the finite `values`."""
  if not 0 < confidence < 1:
    raise ValueError(f'`confidence` must be in (0, 1), got {confidence}.')
  values = np.asarray(values, np.float64).ravel()
  finite = values[np.isfinite(values)]
  failed, n = int(values.size - finite.size), int(finite.size)
  if n == 0:
    return Interval(math.nan, math.nan, math.nan, 0, failed)
  mean = float(finite.mean())
  if n < 2:
    return Interval(mean, math.nan, math.nan, n, failed)
  sem = float(stats.sem(finite))
  if sem == 0:  # identical values (e.g. every seed covers every mode)
    return Interval(mean, mean, mean, n, failed)
  low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
  return Interval(mean, float(low), float(high), n, failed)


@dataclasses.dataclass(frozen=True)
class Comparison:
  """Paired difference a - b over seeds and what it allows one to say."""
  difference: Interval
  verdict: str  # 'a better', 'b better' or 'not separated'


def paired_comparison(a, b, *, lower_is_better: bool = True,
                      confidence: float = 0.95) -> Comparison:
  """Compares two methods run with the same seeds (a[i] and b[i] share
  seed i) on one metric.

  The difference is the t interval of a - b over the pairs where both
  finished. Failures decide first: if only one method has seeds that failed
  where the other finished, it loses; if both do, 'not separated'.
  Otherwise a method is better only when the interval excludes 0.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1:
    raise ValueError(f'Paired values need equal 1-D shapes, got {a.shape} '
                     f'and {b.shape}.')
  ok_a, ok_b = np.isfinite(a), np.isfinite(b)
  both = ok_a & ok_b
  difference = mean_interval(a[both] - b[both], confidence)
  only_a_failed = int(np.sum(~ok_a & ok_b))
  only_b_failed = int(np.sum(ok_a & ~ok_b))
  if only_a_failed and not only_b_failed:
    return Comparison(difference, 'b better')
  if only_b_failed and not only_a_failed:
    return Comparison(difference, 'a better')
  if only_a_failed or difference.n < 2 or not (
      difference.low > 0 or difference.high < 0):
    return Comparison(difference, 'not separated')
  a_lower = difference.high < 0
  return Comparison(difference,
                    'a better' if a_lower == lower_is_better else 'b better')
