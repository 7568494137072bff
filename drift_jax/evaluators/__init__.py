"""Evaluators: what a run's samples are scored with, one registry line each.

An evaluator is a module with an `EVALUATOR` entry (`metric.Evaluator`):
the metrics it logs (label, direction, floor, whether a study keeps it
and a sweep tabulates it), what it needs (exact mixture data, the
evaluation classifier) and `make`. The runner's `Scorer` runs the ones
`eval.evaluators` names that the data allow, in that order; the harness,
the leaderboard and the sweep tables read labels, directions, floors and
ratios from `METRICS` here, never from a list of their own.

Registry order is the order of declarations (and of a sweep's columns);
the order a run logs them in is `eval.evaluators`.
"""

from __future__ import annotations

from drift_jax.evaluators import classifier_features
from drift_jax.evaluators import distances
from drift_jax.evaluators import inception
from drift_jax.evaluators import kid
from drift_jax.evaluators import mixture
from drift_jax.evaluators.metric import Evaluator
from drift_jax.evaluators.metric import Metric

EVALUATORS: dict[str, Evaluator] = {
    'distances': distances.EVALUATOR,
    'mixture': mixture.EVALUATOR,
    'classifier_features': classifier_features.EVALUATOR,
    'kid': kid.EVALUATOR,
    'inception': inception.EVALUATOR,
}
# The default `eval.evaluators`: the order of metrics.jsonl's keys.
DEFAULT = ('distances', 'classifier_features', 'mixture')


def metrics() -> dict[str, Metric]:
  """{key: Metric} of every registered evaluator, then the ratios of the
  metrics with a floor that none declares itself."""
  out = {}
  for evaluator in EVALUATORS.values():
    for m in evaluator.metrics:
      out.setdefault(m.key, m)
  for m in list(out.values()):
    if m.floor:
      ratio = f'{m.key}_ratio'
      out.setdefault(ratio, Metric(ratio, m.ratio_label, m.higher_is_better,
                                    positive=m.positive))
  return out


def label(key: str) -> str:
  """A metric's table label (the key itself when it has none)."""
  m = metrics().get(key)
  return m.label if m is not None and m.label else key


def higher_is_better(key: str) -> bool:
  m = metrics().get(key)
  return bool(m is not None and m.higher_is_better)


def positive(key: str) -> bool:
  """Whether the metric is always > 0 (`Metric.positive`)."""
  m = metrics().get(key)
  return bool(m is not None and m.positive)


def kept_metrics() -> tuple[str, ...]:
  """The metrics a study's stored result keeps (before ratios)."""
  return tuple(k for k, m in metrics().items() if m.kept)


def tabled_metrics() -> tuple[str, ...]:
  """The metrics a sweep's results.md tabulates, in registry order."""
  return tuple(k for k, m in metrics().items() if m.tabled)


def with_ratios(values: dict) -> dict:
  """`values` plus KEY_ratio = value / floor for every metric with a
  floor whose value and (non-zero) floor are both present."""
  out = dict(values)
  for m in metrics().values():
    value, floor = out.get(m.key), out.get(m.floor) if m.floor else None
    if value is not None and floor:
      out[f'{m.key}_ratio'] = value / floor
  return out


__all__ = ['DEFAULT', 'EVALUATORS', 'Evaluator', 'Metric', 'higher_is_better',
           'kept_metrics', 'label', 'metrics', 'positive', 'tabled_metrics',
           'with_ratios']
