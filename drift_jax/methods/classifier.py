"""The image classifier as a method: cross-entropy training through the runner.

Two copies of the conv classifier (`models.classifier.ConvClassifier`) are
trained on a run's training split with different seeds, each as a run of
this method in its own folder of the student's workdir:
- the feature encoder of feature-space drifting (`features.encoder='train'`,
  `workdir/encoder`, seed `ENCODER_SEED`);
- the evaluation classifier (`eval.classifier='train'`,
  `workdir/classifier`, seed `EVAL_SEED`), which no method trains on.
So they get what every run gets: orbax checkpoints, preemption, the
divergence and NaN guards, metrics.jsonl and budget.json
(`drift_jax.train.prerequisites` starts them and loads the result as a frozen
`drift_jax.encoders.classifier.Classifier`).

The loss is softmax cross-entropy, optimised by Adam with a cosine decay of
`classifier.lr` to 0 over `classifier.steps` updates. The parameters are
initialised from `classifier.seed` and each minibatch is drawn on the
device, uniformly with replacement from the whole training set (a
constant of the method), with indices from (`classifier.seed`, step): the
stream classifiers were trained with before the runner took them over,
kept so that every encoder and evaluation classifier, and every number
measured with one, is reproduced bit for bit. The runner's own batch is
therefore not used. Evaluation is the held-out accuracy
(`eval/held_out_accuracy`).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from drift_jax.config import config_lib
from drift_jax.methods import common
from drift_jax.methods.context import RunContext
from drift_jax.models.classifier import ConvClassifier

NAME = 'classifier'
CONFIG = {
    # Shared by the encoder and the evaluation classifier of a run; `seed`
    # is set per copy when `drift_jax.train.prerequisites` starts one.
    'classifier': dict(channels=(32, 64), steps=1500, batch_size=128,
                       lr=2e-3, seed=0),
}
SMOKE = {'classifier': dict(channels=(8, 16), steps=20, batch_size=32)}
EVAL_SEED = 0x0E7A  # the evaluation classifier's seed
ENCODER_SEED = 0x0E1C  # the feature encoder's seed
ACCURACY = 'eval/held_out_accuracy'


def build(image_shape, num_classes, channels, seed) -> ConvClassifier:
  """The classifier network, initialised from `seed`."""
  return ConvClassifier(tuple(image_shape), num_classes,
                        channels=tuple(channels), rngs=nnx.Rngs(seed))


def validate(config) -> None:
  """Start-up checks of the `classifier` section (and of the data: a
  classifier needs labelled images)."""
  common.check_no_feature_space(config, NAME)
  config_lib.check_at_least_one('classifier', config.classifier,
                                ('steps', 'batch_size'))
  if not config.classifier.lr > 0:
    raise ValueError(f'`classifier.lr` must be > 0, got '
                     f'{config.classifier.lr}.')
  if config.conditional.enabled:
    raise ValueError("`conditional.enabled` does not apply to "
                     f"method={NAME!r} (it always learns every class).")


def prerequisites(config) -> dict:
  """A classifier needs nothing trained before it."""
  del config
  return {}


def run_config(config, seed: int, schema) -> ml_collections.ConfigDict:
  """The classifier run a student of `config` trains first, with `seed`
  (`common.pretraining_run_config`: it depends on the data and the
  `classifier` section only)."""
  return common.pretraining_run_config(config, NAME, 'classifier', seed,
                                       schema)


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
  """Everything a classifier step needs, built once by `make`."""
  image_shape: tuple
  num_classes: int
  channels: tuple
  seed: int
  batch_size: int
  tx: optax.GradientTransformation
  graphdef: object


def make_spec(classifier_config, image_shape, num_classes
              ) -> ClassifierSpec:
  """The step's spec from the `classifier` section and the data."""
  c = classifier_config
  return ClassifierSpec(
      image_shape=tuple(image_shape), num_classes=num_classes,
      channels=tuple(c.channels), seed=c.seed, batch_size=c.batch_size,
      tx=optax.adam(optax.cosine_decay_schedule(c.lr, c.steps)),
      graphdef=nnx.split(nnx.eval_shape(lambda: build(
          image_shape, num_classes, c.channels, 0)))[0])


def make(config, ctx: RunContext) -> common.Method:
  """The classifier method for labelled image data `ctx.data`."""
  data = ctx.data
  if data is None or data.image_shape is None or data.num_classes < 2:
    raise ValueError(f'method={NAME!r} needs labelled images; data '
                     f'{config.data.name!r} has none.')
  spec = make_spec(config.classifier, data.image_shape, data.num_classes)
  constants = {'images': jnp.asarray(data.train),
               'labels': jnp.asarray(data.labels),
               'held_out': jnp.asarray(data.held_out),
               'held_out_labels': jnp.asarray(data.held_out_labels)}
  return common.Method(functools.partial(init, spec),
                       functools.partial(train_step, spec),
                       None, constants,
                       evaluate=functools.partial(evaluate, spec))


def init(spec: ClassifierSpec, key):
  """Parameters from `classifier.seed` (not from the runner's key; see the
  module docstring) and Adam's state."""
  del key
  _, params = nnx.split(build(spec.image_shape, spec.num_classes,
                              spec.channels, spec.seed))
  return common.image_network_state(params, spec.tx, spec.image_shape)


def abstract_state(spec: ClassifierSpec):
  """The shapes of a classifier run's state, for restoring one."""
  return jax.eval_shape(lambda: init(spec, None))


def train_step(spec: ClassifierSpec, state, constants, batch, key, step=0):
  """One Adam step on the cross-entropy of a minibatch drawn from the
  constants' training set with indices from (`classifier.seed`, step)."""
  del batch, key  # the classifier's own stream (module docstring)
  images, labels = constants['images'], constants['labels']
  draw = common.own_minibatch_key(spec.seed, step)
  idx = jax.random.randint(draw, (spec.batch_size,), 0, images.shape[0])

  def loss_fn(params):
    logits = nnx.merge(spec.graphdef, params)(images[idx])
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, labels[idx]).mean()

  loss, grads = jax.value_and_grad(loss_fn)(state['params'])
  return (common.image_network_update(state, grads, spec.tx),
          {'train/loss': loss})


def logits(graphdef, params, x):
  return nnx.merge(graphdef, params)(x)


def accuracy(graphdef, params, images, labels) -> float:
  """Fraction of `images` whose argmax logit equals `labels`."""
  out = jax.jit(functools.partial(logits, graphdef))(params,
                                                      jnp.asarray(images))
  return float(jnp.mean(jnp.argmax(out, -1) == jnp.asarray(labels)))


def evaluate(spec: ClassifierSpec, state, constants) -> dict:
  """The held-out accuracy of the current parameters."""
  return {ACCURACY: accuracy(spec.graphdef, state['params'],
                             constants['held_out'],
                             constants['held_out_labels'])}
