"""Sample distances to the held-out set: energy distance and unbiased
multi-bandwidth MMD^2 (`metrics`), beside their data-vs-data floors, the
mean over `eval.floor_draws` reference draws (one draw's floor varies
about five-fold between draws)."""

from __future__ import annotations

import json

import numpy as np

from drift_jax.data import datasets as data_lib
from drift_jax.evaluators import sample_metrics as metrics_lib
from drift_jax.evaluators.metric import Evaluator
from drift_jax.evaluators.metric import Metric

FLOOR_SALT = 0xF100  # keys of the extra floor draws (`eval.floor_draws`)
# Per process, for fixed evaluation sets (a comparison suite's runs share
# them): the floors, and the MMD bandwidths (the held-out set's median
# distance; 1.4 s of a 21-s harness run on the toys, 5,000 points).
_FLOOR_CACHE: dict = {}
_BANDWIDTH_CACHE: dict = {}


def _fixed_sets_key(config) -> tuple | None:
  """What fixes the held-out set and the floor references: the data
  config, the evaluation seed, split and size; None when the sets are
  drawn afresh from the run's seed (`eval.seed` < 0)."""
  if config.eval.get('seed', -1) < 0:
    return None
  return (json.dumps(config.data.to_dict(), sort_keys=True),
          config.eval.seed, config.eval.get('split', 'test'),
          config.eval.num_samples)


class Distances:
  """Energy distance and MMD^2 of samples [n, D] to the held-out set."""

  def __init__(self, dataset, config):
    self._dataset = dataset
    key = _fixed_sets_key(config)
    if key is not None and key in _BANDWIDTH_CACHE:
      self._bandwidths = _BANDWIDTH_CACHE[key]
    else:
      median = float(metrics_lib.median_distance(dataset.held_out))
      self._bandwidths = tuple(f * median
                               for f in metrics_lib.MMD_BANDWIDTH_FACTORS)
      if key is not None:
        _BANDWIDTH_CACHE[key] = self._bandwidths
    self.floors = self._floors(config)

  def _floors(self, config):
    """Mean over the reference draws of ED and MMD^2 vs the held-out set;
    draw 0 is `dataset.floor_reference` (one draw: the floor of before).
    Cached per process when the sets are fixed (`eval.seed` >= 0)."""
    draws = config.eval.get('floor_draws', 1)
    key = _fixed_sets_key(config)
    if key is not None:
      key += (draws,)
      if key in _FLOOR_CACHE:
        return dict(_FLOOR_CACHE[key])
    held_out = self._dataset.held_out
    references = [self._dataset.floor_reference]
    if draws > 1:
      seed = data_lib.evaluation_seed(config.seed,
                                      config.eval.get('seed', -1))
      references += data_lib.independent_draws(self._dataset, draws - 1,
                                               seed, FLOOR_SALT)
    floors = {
        'eval/energy_distance_floor': float(np.mean([
            float(metrics_lib.energy_distance(r, held_out))
            for r in references])),
        'eval/mmd2_floor': float(np.mean([
            float(metrics_lib.mmd2(r, held_out, self._bandwidths))
            for r in references])),
    }
    if key is not None:
      _FLOOR_CACHE[key] = floors
    return dict(floors)

  def __call__(self, samples) -> dict:
    held_out = self._dataset.held_out
    ed = float(metrics_lib.energy_distance(samples, held_out))
    return {'eval/energy_distance': ed,
            'eval/energy_distance_ratio':
                ed / self.floors['eval/energy_distance_floor'],
            'eval/mmd2': float(metrics_lib.mmd2(samples, held_out,
                                                self._bandwidths))}


def _make(dataset, config, *, classifier=None, num_classes=0):
  del classifier, num_classes
  return Distances(dataset, config)


EVALUATOR = Evaluator(
    metrics=(
        Metric('eval/energy_distance', 'energy distance',
               floor='eval/energy_distance_floor', ratio_label='ED / floor',
               kept=True, positive=True),
        Metric('eval/energy_distance_ratio', 'ED / floor', tabled=True,
               positive=True),
        Metric('eval/energy_distance_floor', 'ED floor', kept=True),
        Metric('eval/mmd2', 'MMD² (unbiased)', floor='eval/mmd2_floor',
               ratio_label='MMD² / floor', kept=True, tabled=True),
        Metric('eval/mmd2_floor', 'MMD² floor', kept=True),
    ),
    needs=(), make=_make)
