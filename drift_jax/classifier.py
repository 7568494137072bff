"""Train, save and load the image classifiers this codebase uses.

`config.classifier` sets the architecture and schedule. Two copies are
trained from it on the run's training split with different seeds:
- the evaluation classifier (`eval.classifier`: 'train' trains one into
  `workdir/classifier`, or a path to one), for the Frechet distance,
  precision/recall and conditional accuracy;
- the feature encoder of feature-space drifting (`features.encoder`:
  'train' trains one into `workdir/encoder`, or a path to one).
The two share no weights, so feature-space drifting is not optimising the
evaluation network itself (they are trained on the same data, so they are
not independent either; README and reproduction.md say so).

A classifier directory holds `classifier.json` (architecture, training
cost, held-out accuracy) and `params.npz` (the parameter leaves in
`jax.tree` order). Training is deterministic in its seed and runs on one
device (a few seconds to a minute on a CPU for the digits).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from drift_jax import checkpoint
from drift_jax import preemption
from drift_jax import reporting
from drift_jax import workdir as workdir_lib
from drift_jax.models.classifier import ConvClassifier

META_FILE = 'classifier.json'
PARAMS_FILE = 'params.npz'
CHECKPOINT_DIR = 'checkpoints'  # while training; the result is PARAMS_FILE
EVAL_SEED = 0x0E7A  # the evaluation classifier's seed
ENCODER_SEED = 0x0E1C  # the feature encoder's seed


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


def _build(image_shape, num_classes, channels, key):
  return ConvClassifier(tuple(image_shape), num_classes,
                        channels=tuple(channels), rngs=nnx.Rngs(key))


def train(images, labels, held_out, held_out_labels, *, image_shape,
          num_classes, channels, steps, batch_size, lr, seed,
          checkpoint_dir=None, checkpoint_every=0) -> Classifier:
  """Cross-entropy training with Adam on flat images [N, H W C].

  With `checkpoint_dir`, (params, optimiser state) are saved there every
  `checkpoint_every` steps and at SIGTERM / SIGINT (then
  `preemption.Preempted` is raised), and training resumes from the newest
  one; the batches are functions of (seed, step), so a resumed classifier
  equals an uninterrupted one. Returns the trained classifier; `meta`
  records its held-out accuracy.
  """
  if images.shape[0] != labels.shape[0] or np.any(labels < 0):
    raise ValueError('Classifier training needs a label in [0, num_classes) '
                     f'for every image; got {images.shape[0]} images and '
                     f'labels {np.unique(labels)}.')
  start_time = time.perf_counter()
  model = _build(image_shape, num_classes, channels, seed)
  graphdef, params = nnx.split(model)
  tx = optax.adam(optax.cosine_decay_schedule(lr, steps))
  x_all, y_all = jnp.asarray(images), jnp.asarray(labels)

  @jax.jit
  def step(params, opt_state, key):
    idx = jax.random.randint(key, (batch_size,), 0, x_all.shape[0])

    def loss_fn(p):
      logits = nnx.merge(graphdef, p)(x_all[idx])
      return optax.softmax_cross_entropy_with_integer_labels(
          logits, y_all[idx]).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  key = jax.random.key(seed)
  state = {'params': params, 'opt_state': tx.init(params)}
  with _checkpoints(checkpoint_dir, checkpoint_every) as saver:
    first, state = saver.restore(state)
    for i in range(first, steps):
      params, opt_state, _ = step(state['params'], state['opt_state'],
                                  jax.random.fold_in(key, i))
      state = {'params': params, 'opt_state': opt_state}
      saver.after_step(i + 1, state)
  result = Classifier(graphdef, state['params'], {})
  accuracy = accuracy_of(result, held_out, held_out_labels)
  meta = dict(image_shape=list(image_shape), num_classes=num_classes,
              channels=list(channels), steps=steps, batch_size=batch_size,
              lr=lr, seed=seed, held_out_accuracy=accuracy,
              seconds=time.perf_counter() - start_time)
  return result._replace(meta=meta)


class _Saver:
  """Periodic and on-signal checkpoints of a training loop (or nothing,
  without a directory)."""

  def __init__(self, directory, every, manager):
    self._directory, self._every, self._manager = directory, every, manager

  def restore(self, state):
    """(first step, state): the newest checkpoint's, or (0, `state`)."""
    if self._manager is None:
      return 0, state
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    step, restored = checkpoint.restore_latest(
        self._manager, checkpoint.abstract_like(state, sharding))
    return (0, state) if restored is None else (step, restored)

  def after_step(self, step, state):
    if self._manager is None:
      return
    signal_name = preemption.requested()
    if (self._every and step % self._every == 0) or signal_name:
      checkpoint.save(self._manager, step, state)
    if signal_name:
      checkpoint.wait(self._manager)
      raise preemption.Preempted(signal_name, step, self._directory)


@contextlib.contextmanager
def _checkpoints(directory, every):
  if directory is None:
    yield _Saver(None, 0, None)
    return
  manager = checkpoint.make_manager(directory, max_to_keep=1)
  try:
    with preemption.handle_signals():
      yield _Saver(directory, every, manager)
  finally:
    checkpoint.wait(manager)
    manager.close()


def accuracy_of(classifier: Classifier, images, labels) -> float:
  """Fraction of `images` whose argmax logit equals `labels`."""
  logits = jax.jit(classifier.logits)(classifier.params, jnp.asarray(images))
  return float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(labels)))


def save(classifier: Classifier, directory: str) -> None:
  """Parameters, then the metadata that marks the classifier finished,
  each written atomically (a kill leaves no half-written classifier)."""
  if not reporting.is_writer():
    return
  os.makedirs(directory, exist_ok=True)
  leaves = jax.tree.leaves(classifier.params)
  params = io.BytesIO()
  np.savez(params, *[np.asarray(leaf) for leaf in leaves])
  workdir_lib.write_atomic(os.path.join(directory, PARAMS_FILE),
                           params.getvalue())
  workdir_lib.write_atomic(os.path.join(directory, META_FILE),
                           json.dumps(classifier.meta, indent=2,
                                      sort_keys=True))


def load(directory: str) -> Classifier:
  """Loads a classifier directory written by `save`.

  Raises:
    FileNotFoundError / ValueError naming `directory` when it is not one.
  """
  meta_path = os.path.join(directory, META_FILE)
  params_path = os.path.join(directory, PARAMS_FILE)
  if not (os.path.isfile(meta_path) and os.path.isfile(params_path)):
    raise FileNotFoundError(
        f'Classifier directory {directory!r} must hold {META_FILE} and '
        f'{PARAMS_FILE} (written by a run with eval.classifier=\'train\' '
        "or features.encoder='train', in its classifier/ or encoder/).")
  with open(meta_path) as f:
    meta = json.load(f)
  abstract = nnx.eval_shape(lambda: _build(
      meta['image_shape'], meta['num_classes'], meta['channels'], 0))
  graphdef, abstract_params = nnx.split(abstract)
  with np.load(params_path) as stored:
    arrays = [stored[f'arr_{i}'] for i in range(len(stored.files))]
  want = jax.tree.leaves(abstract_params)
  if [a.shape for a in arrays] != [w.shape for w in want]:
    raise ValueError(f'Classifier {directory!r}: stored parameter shapes do '
                     f'not match its {META_FILE}.')
  params = jax.tree.unflatten(jax.tree.structure(abstract_params),
                              [jnp.asarray(a) for a in arrays])
  return Classifier(graphdef, params, meta)


def train_or_load(directory: str, dataset, classifier_config, *, seed: int,
                  checkpoint_every: int = 0) -> Classifier:
  """The classifier in `directory`, trained there first if absent (the
  same data and config give the same network, so a finished one is reused;
  an interrupted training resumes from `directory/checkpoints`).
  """
  if os.path.isfile(os.path.join(directory, META_FILE)):
    return check_matches(load(directory), dataset, directory)
  if dataset.image_shape is None or dataset.num_classes < 2:
    raise ValueError(f'Training a classifier needs labelled images; data '
                     f'{dataset.name!r} has none.')
  c = classifier_config
  result = train(dataset.train, dataset.labels, dataset.held_out,
                 dataset.held_out_labels, image_shape=dataset.image_shape,
                 num_classes=dataset.num_classes, channels=c.channels,
                 steps=c.steps, batch_size=c.batch_size, lr=c.lr, seed=seed,
                 checkpoint_dir=os.path.join(directory, CHECKPOINT_DIR),
                 checkpoint_every=checkpoint_every)
  save(result, directory)
  return result


def from_choice(choice: str, train_dir: str, dataset, classifier_config, *,
                seed: int, checkpoint_every: int = 0) -> Classifier:
  """The classifier `choice` names: 'train' (`workdir.TRAIN_HERE`) for the
  one in `train_dir`, trained there first if absent, else the directory of
  one (checked against `dataset`)."""
  if choice != workdir_lib.TRAIN_HERE:
    return check_matches(load(choice), dataset, choice)
  return train_or_load(train_dir, dataset, classifier_config, seed=seed,
                       checkpoint_every=checkpoint_every)


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
