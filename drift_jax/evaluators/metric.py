"""What an evaluator declares about each metric it logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple


class Metric(NamedTuple):
  """One logged metric.

  Attributes:
    key: its name in metrics.jsonl ('eval/energy_distance').
    label: its name in tables ('' : the key).
    higher_is_better: ranking direction (leaderboard, choice of points).
    floor: the key of its data-vs-data floor; a ratio `KEY_ratio` is then
      derived (value / floor) wherever results are stored.
    ratio_label: the label of that ratio.
    kept: a study's result stores it (the small JSON files).
    tabled: a sweep's results.md has a column for it.
    positive: it is always > 0 (a V-statistic, a Fréchet distance, a
      ratio of such to a positive floor), so tables compare it on the log
      scale (`stats.log_ratio_comparison`); a suite ranks only by these.
  """
  key: str
  label: str = ''
  higher_is_better: bool = False
  floor: str = ''
  ratio_label: str = ''
  kept: bool = False
  tabled: bool = False
  positive: bool = False


class Evaluator(NamedTuple):
  """An evaluator module's entry in the registry.

  Attributes:
    metrics: the metrics it logs.
    needs: what it needs: 'mixture' (exact Gaussian-mixture data),
      'classifier' (the evaluation classifier of labelled images) or
      'images' (image data); it is left out of a run whose data lack it.
    make: (dataset, config, *, classifier, num_classes) -> a scorer with
      `floors` (a dict, computed once) and `__call__(samples) -> dict`.
  """
  metrics: tuple[Metric, ...]
  needs: tuple[str, ...]
  make: Callable[..., Any]
