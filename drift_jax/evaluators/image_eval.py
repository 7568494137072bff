"""Image metrics in the feature space of this codebase's own classifier.

For labelled image data the runner evaluates generated samples with a conv
classifier trained on the run's training split
(`drift_jax.encoders.classifier`):
- `eval/feature_fd`: Frechet distance between Gaussians fitted to the
  classifier's pooled features of the samples and of the held-out images,
  beside `eval/feature_fd_floor` (training vs held-out images, same size).
  This is an Inception-free analogue of FID on a different network and
  data, so its values are not comparable to published FIDs;
- `eval/precision`, `eval/recall`: k-NN manifold precision and recall
  (Kynkaanniemi et al. 2019, k = 3) in the same features;
- `eval/class_accuracy` (class-conditional runs): the fraction of samples
  the classifier assigns to the label they were generated for (labels are
  class-major, `data.class_major_labels`);
- `eval/classifier_held_out_accuracy`: the classifier's own accuracy on the
  held-out images, the ceiling for the one above.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from drift_jax.data import datasets as data_lib
from drift_jax.evaluators import sample_metrics as metrics

PR_NEIGHBOURS = 3


class ClassifierFeatures:
  """The evaluation classifier's pooled features of images, jitted once
  (what every evaluator in its feature space scores)."""

  def __init__(self, classifier):
    self._classifier = classifier
    self._embed = jax.jit(classifier.embedding)

  def _features(self, images):
    return np.asarray(self._embed(self._classifier.params,
                                  jnp.asarray(images)))


class ImageMetrics(ClassifierFeatures):
  """Callable samples [n, D] -> dict of image metrics (module docstring)."""

  def __init__(self, classifier, dataset, *, num_classes: int = 0):
    super().__init__(classifier)
    self._num_classes = num_classes
    self._logits = jax.jit(classifier.logits)
    self._held_out = self._features(dataset.held_out)
    reference = self._features(dataset.floor_reference)
    self.floors = {
        'eval/feature_fd_floor': float(metrics.frechet_distance(
            reference, self._held_out)),
        'eval/classifier_held_out_accuracy': float(
            classifier.meta.get('held_out_accuracy', float('nan'))),
    }

  def __call__(self, samples) -> dict:
    feats = self._features(samples)
    fd = float(metrics.frechet_distance(feats, self._held_out))
    k = min(PR_NEIGHBOURS, len(feats) - 1, len(self._held_out) - 1)
    precision, recall = metrics.precision_recall(self._held_out, feats, k=k)
    result = {'eval/feature_fd': fd,
              'eval/feature_fd_ratio': fd / self.floors[
                  'eval/feature_fd_floor'],
              'eval/precision': precision, 'eval/recall': recall,
              **self.floors}
    if self._num_classes:
      labels = data_lib.class_major_labels(len(samples), self._num_classes)
      logits = self._logits(self._classifier.params, jnp.asarray(samples))
      result['eval/class_accuracy'] = float(
          jnp.mean(jnp.argmax(logits, -1) == labels))
    return result
