"""A test-only evaluator, the smallest real one: the distance between the
samples' mean and the held-out set's, `eval/mean_offset`.

It shows what adding an evaluator takes: this module plus one registry
line (`evaluators.EVALUATORS['mean_offset'] = mean_offset_evaluator
.EVALUATOR`) and its name in `eval.evaluators`; the runner's scorer, the
harness's stored results and the leaderboard's labels read it from there.
"""

import numpy as np

from drift_jax.evaluators import Evaluator
from drift_jax.evaluators import Metric


class MeanOffset:
  floors: dict = {}

  def __init__(self, held_out):
    self._mean = held_out.mean(0)

  def __call__(self, samples) -> dict:
    return {'eval/mean_offset': float(np.linalg.norm(samples.mean(0)
                                                     - self._mean))}


def _make(dataset, config, *, classifier=None, num_classes=0):
  del config, classifier, num_classes
  return MeanOffset(dataset.held_out)


EVALUATOR = Evaluator(
    metrics=(Metric('eval/mean_offset', 'mean offset', kept=True,
                    tabled=True),),
    needs=(), make=_make)
