"""Gaussian-mixture quality of samples against the exact mixture
(`metrics.mixture_quality`): modes covered, high-quality fraction, the
total-variation error of the per-mode mass, log-likelihood, and the mass
of every mode when there are few."""

from __future__ import annotations

import numpy as np

from drift_jax.evaluators import sample_metrics as metrics_lib
from drift_jax.evaluators.metric import Evaluator
from drift_jax.evaluators.metric import Metric

MAX_LOGGED_MODES = 16  # mixtures up to this size log each mode's mass


class MixtureQuality:
  """Mode metrics of samples [n, D] (mixture data only)."""

  floors: dict = {}

  def __init__(self, mixture):
    self._mixture = mixture

  def __call__(self, samples) -> dict:
    quality = metrics_lib.mixture_quality(samples, self._mixture)
    result = {f'eval/{k}': float(v) for k, v in quality.items()
              if k != 'mode_mass'}
    result['eval/min_mode_mass'] = float(np.min(quality['mode_mass']))
    if len(quality['mode_mass']) <= MAX_LOGGED_MODES:
      result.update({f'eval/mode_mass/{k}': float(m)
                     for k, m in enumerate(quality['mode_mass'])})
    return result


def _make(dataset, config, *, classifier=None, num_classes=0):
  del config, classifier, num_classes
  return MixtureQuality(dataset.mixture)


EVALUATOR = Evaluator(
    metrics=(
        Metric('eval/high_quality_fraction', 'high-quality fraction',
               higher_is_better=True, kept=True, tabled=True),
        Metric('eval/modes_covered', 'modes covered', higher_is_better=True,
               kept=True, tabled=True),
        Metric('eval/mode_mass_error', 'mode-mass error (TV)', kept=True),
        Metric('eval/log_likelihood', 'log-likelihood',
               higher_is_better=True),
        Metric('eval/min_mode_mass', 'smallest mode mass',
               higher_is_better=True),
    ),
    needs=('mixture',), make=_make)
