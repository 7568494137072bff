"""Metrics in the features of the evaluation classifier, a network no
method trains in (`image_eval.ImageMetrics`): feature Frechet distance
beside its floor, k-NN precision and recall, class accuracy."""

from __future__ import annotations

from drift_jax.evaluators import image_eval
from drift_jax.evaluators.metric import Evaluator
from drift_jax.evaluators.metric import Metric


def _make(dataset, config, *, classifier=None, num_classes=0):
  del config
  return image_eval.ImageMetrics(classifier, dataset,
                                 num_classes=num_classes)


EVALUATOR = Evaluator(
    metrics=(
        Metric('eval/feature_fd', 'feature FD', floor='eval/feature_fd_floor',
               ratio_label='feature FD / floor', kept=True, tabled=True,
               positive=True),
        Metric('eval/feature_fd_floor', 'feature FD floor', kept=True,
               tabled=True),
        Metric('eval/feature_fd_ratio', 'feature FD / floor', positive=True),
        Metric('eval/precision', 'precision', higher_is_better=True,
               kept=True, tabled=True),
        Metric('eval/recall', 'recall', higher_is_better=True, kept=True,
               tabled=True),
        Metric('eval/class_accuracy', 'class accuracy',
               higher_is_better=True, kept=True, tabled=True),
        Metric('eval/classifier_held_out_accuracy',
               'classifier accuracy (held out)', higher_is_better=True),
    ),
    needs=('classifier',), make=_make)
