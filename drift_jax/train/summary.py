"""What a finished run prints: its headline number and what it means.

The headline is the metric the leaderboard ranks the data by
(`reporting.HEADLINE_METRICS`: feature FD on labelled images, energy
distance elsewhere) as a ratio to its data-vs-data floor, lower is better,
beside where fresh draws of the data land on the same evaluation sets (the
leaderboard's data row, `studies.harness.data_row`, recomputed here for
synthetic and point data: the same draws when `eval.seed` is the task's
evaluation seed). Times separate the wall seconds into the first call
(compiling it, mostly), evaluations, and the rest.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from drift_jax.data import datasets as data_lib
from drift_jax.evaluators import distances
from drift_jax.train import reporting

DATA_DRAWS = 10  # the leaderboard's `data_draws`


def data_row(config, draws: int = DATA_DRAWS,
             key: str = 'eval/energy_distance_ratio') -> np.ndarray | None:
  """[draws] energy-distance ratios (or another `key` of the distances
  evaluator) of independent draws of the data against the run's held-out
  set and floor (None for image data, whose feature FD needs the
  evaluation classifier; the leaderboard's images section has their data
  row)."""
  dataset = data_lib.for_run(config)
  if dataset.image_shape is not None:
    return None
  scorer = distances.Distances(dataset, config)
  seed = data_lib.evaluation_seed(config.seed, config.eval.get('seed', -1))
  return np.array([
      scorer(draw)[key]
      for draw in data_lib.independent_draws(dataset, draws, seed,
                                             data_lib.DATA_ROW_SALT)])


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high): the mean and its t-interval."""
  values = np.asarray(values, dtype=float)
  mean = float(values.mean())
  half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)
               * values.std(ddof=1) / np.sqrt(len(values)))
  return mean, mean - half, mean + half


def lines(config, summary: dict, row=None) -> list[str]:
  """The end-of-run summary: method and steps, the seconds, the headline
  ratio with its floor, and where fresh data land (`row`, `data_row`)."""
  wall = summary.get('time/wall_seconds', float('nan'))
  first = summary.get('time/first_call_seconds', 0.0)
  evaluation = summary.get('time/eval_seconds', 0.0)
  out = [f'method={config.method} data={config.data.name} '
         f'steps={summary["step"]}',
         f'time: {wall:.1f} s wall in all = {first:.1f} s first call '
         f'(compiling) + {evaluation:.1f} s evaluating + '
         f'{max(wall - first - evaluation, 0.0):.1f} s training (this '
         'process; the leaderboard budgets charged seconds, README)']
  if summary.get('budget/teacher_steps'):
    out[-1] += (f'; + teacher {summary["time/teacher_wall_seconds"]:.1f} s '
                'charged')
  label, key, ratio = reporting.headline_metric(summary)
  value = summary.get(key, float('nan'))
  floor = summary.get(key + '_floor', float('nan'))
  out.append(f'{label} {value:.5g} vs data-vs-data floor {floor:.5g}: '
             f'{ratio:.2f}x the floor (lower is better; '
             f'{summary.get("eval/num_samples", 0)} samples each)')
  if row is not None:
    mean, low, high = mean_interval(row)
    out.append(f'fresh draws of the data land at {mean:.2f}x '
               f'[{low:.2f}, {high:.2f}] the floor on these sets (mean '
               f'[95 % t-interval] of {len(row)} draws: the data row)')
  return out
