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
_FLOOR_CACHE: dict = {}  # floors of fixed evaluation sets, per process


class Distances:
  """Energy distance and MMD^2 of samples [n, D] to the held-out set."""

  def __init__(self, dataset, config):
    self._dataset = dataset
    held_out = dataset.held_out
    self._bandwidths = tuple(
        f * float(metrics_lib.median_distance(held_out))
        for f in metrics_lib.MMD_BANDWIDTH_FACTORS)
    self.floors = self._floors(config)

  def _floors(self, config):
    """Mean over the reference draws of ED and MMD^2 vs the held-out set;
    draw 0 is `dataset.floor_reference` (one draw: the floor of before).
    Cached per process when the sets are fixed (`eval.seed` >= 0)."""
    draws = config.eval.get('floor_draws', 1)
    key = None
    if config.eval.get('seed', -1) >= 0:
      key = (json.dumps(config.data.to_dict(), sort_keys=True),
             config.eval.seed, config.eval.get('split', 'test'),
             config.eval.num_samples, draws)
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
