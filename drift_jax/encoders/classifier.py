"""Frozen image classifiers: the feature encoder and the evaluation net.

They are trained as runs of the `classifier` method
(`drift_jax.methods.classifier`) in a folder of the student's workdir, or
named by the directory of such a run. `load` turns a finished one into a
`Classifier` (graph, parameters, and what it cost). The two copies share
no weights, so feature-space drifting is not optimising the evaluation
network itself (they are trained on the same data, so they are not
independent either; README and reproduction.md say so).

A classifier directory written before the runner trained classifiers
(`classifier.json` and `params.npz`, the leaves in `jax.tree` order) still
loads, read-only; nothing writes that format any more.
"""

from __future__ import annotations

import json
import os
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from drift_jax.encoders import pretrained
from drift_jax.methods import classifier as method
from drift_jax.train import reporting

NAME = 'classifier'
SEED = method.ENCODER_SEED  # the feature encoder's copy
LENGTH_KEY = 'classifier.steps'
LEGACY_META_FILE = 'classifier.json'
LEGACY_PARAMS_FILE = 'params.npz'


def run_config(config, seed: int, schema):
  """The classifier run a student of `config` trains first."""
  return method.run_config(config, seed, schema)


def needs_training(directory: str) -> bool:
  """False for a folder in the retired params.npz format (loaded as it
  is); a classifier run is trained there, or resumed, or reused."""
  return not is_legacy(directory)


class Classifier(NamedTuple):
  """A frozen classifier: graph, parameters and what it cost."""
  graphdef: Any
  params: Any
  meta: dict

  def module(self, params=None):
    return nnx.merge(self.graphdef, self.params if params is None else params)

  def logits(self, params, x):
    return self.module(params)(x)

  def embedding(self, params, x):
    return self.module(params).embedding(x)

  def feature_maps(self, params, x):
    return self.module(params).feature_maps(x)


def accuracy_of(classifier: Classifier, images, labels) -> float:
  """Fraction of `images` whose argmax logit equals `labels`."""
  return method.accuracy(classifier.graphdef, classifier.params, images,
                         labels)


def is_legacy(directory: str) -> bool:
  """Whether `directory` holds a classifier in the retired params.npz
  format."""
  return all(os.path.isfile(os.path.join(directory, name))
             for name in (LEGACY_META_FILE, LEGACY_PARAMS_FILE))


def load(directory: str, dataset, allow_unfinished: bool = False
         ) -> Classifier:
  """The finished classifier in `directory` (a `classifier` run, or the
  retired params.npz format), checked against `dataset`.

  Raises:
    FileNotFoundError / ValueError naming `directory` when it is not one,
    or when it was trained for other images.
  """
  if is_legacy(directory):
    return check_matches(_load_legacy(directory), dataset, directory)
  run = pretrained.read_run(
      directory, method.NAME,
      f'Classifier directory {directory!r} holds no classifier run '
      "(train one with eval.classifier='train' or "
      "features.encoder='train').",
      f'Classifier {directory!r} is a {{method}} run; '
      f'a classifier must be a `method={method.NAME}` run.')
  return check_matches(_load_run(directory, run, dataset, allow_unfinished),
                       dataset, directory)


def _load_run(directory, run, dataset, allow_unfinished) -> Classifier:
  image_shape = tuple(dataset.image_shape or ())
  if len(image_shape) != 3 or dataset.num_classes < 2:
    raise ValueError(f'A classifier needs labelled images; data '
                     f'{dataset.name!r} has none.')
  spec = method.make_spec(run.classifier, image_shape, dataset.num_classes)
  state, budget = pretrained.restore_finished(
      directory, run, 'Classifier', method.abstract_state(spec),
      dataset.name, f'{image_shape}, {dataset.num_classes} classes',
      allow_unfinished)
  records = [r for r in reporting.read_metrics(directory)
             if method.ACCURACY in r]
  meta = dict(image_shape=[int(v) for v in state['image_shape']],
              num_classes=dataset.num_classes,
              channels=list(run.classifier.channels),
              steps=int(budget['steps']),
              batch_size=run.classifier.batch_size, lr=run.classifier.lr,
              seed=run.classifier.seed,
              held_out_accuracy=(records[-1][method.ACCURACY] if records
                                 else float('nan')),
              seconds=float(budget['wall_seconds']))
  return Classifier(spec.graphdef, state['params'], meta)


def _load_legacy(directory: str) -> Classifier:
  with open(os.path.join(directory, LEGACY_META_FILE)) as f:
    meta = json.load(f)
  abstract = nnx.eval_shape(lambda: method.build(
      meta['image_shape'], meta['num_classes'], meta['channels'], 0))
  graphdef, abstract_params = nnx.split(abstract)
  with np.load(os.path.join(directory, LEGACY_PARAMS_FILE)) as stored:
    arrays = [stored[f'arr_{i}'] for i in range(len(stored.files))]
  want = jax.tree.leaves(abstract_params)
  if [a.shape for a in arrays] != [w.shape for w in want]:
    raise ValueError(f'Classifier {directory!r}: stored parameter shapes do '
                     f'not match its {LEGACY_META_FILE}.')
  params = jax.tree.unflatten(jax.tree.structure(abstract_params),
                              [jnp.asarray(a) for a in arrays])
  return Classifier(graphdef, params, meta)


def check_matches(classifier: Classifier, dataset, directory: str
                  ) -> Classifier:
  """Raises ValueError naming `directory` if it was made for other images."""
  shape = tuple(classifier.meta['image_shape'])
  if shape != tuple(dataset.image_shape or ()) or (
      classifier.meta['num_classes'] != dataset.num_classes):
    raise ValueError(
        f'Classifier {directory!r} is for images {shape} with '
        f'{classifier.meta["num_classes"]} classes, but data '
        f'{dataset.name!r} has {dataset.image_shape} and '
        f'{dataset.num_classes} classes.')
  return classifier
