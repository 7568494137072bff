"""Masked-autoencoder pre-training as a method: the feature encoder of
drifting in image space (Deng et al. 2026 §3.4, App. A.3), trained here.

A `mae` run trains `models.mae.MAEResNet` on a run's training split: each
step masks `mae.patch` x `mae.patch` patches of a minibatch at
`mae.mask_ratio` and minimises the mean squared error on the masked
pixels (He et al. 2022), plus `mae.cls_weight` times the cross-entropy of
an optional classification head (the paper's fine-tune term, off by
default). Adam with a cosine decay of `mae.lr` to 0 over `mae.steps`.

Like the classifier (`methods/classifier.py`), the run draws its own
minibatches on the device from (`mae.seed`, step) over the whole training
set, is trained on one device, and evaluates without generating: the
held-out masked MSE under a fixed mask (`eval/held_out_masked_mse`).
`drift_jax.encoders.mae` loads a finished run as a frozen encoder.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from drift_jax.config import config_lib
from drift_jax.methods import common
from drift_jax.methods.context import RunContext
from drift_jax.models.mae import MAEResNet
from drift_jax.models.mae import masked_mse
from drift_jax.models.mae import patch_mask

NAME = 'mae'
CONFIG = {
    'mae': dict(width=16, blocks=(1, 1, 1, 1), steps=2000, batch_size=128,
                lr=2e-3, mask_ratio=0.5, patch=2, cls_weight=0.0, seed=0),
}
SMOKE = {'mae': dict(width=4, blocks=(1, 1), steps=10, batch_size=16)}
ENCODER_SEED = 0x3AE  # the feature encoder's copy
MSE = 'eval/held_out_masked_mse'
ACCURACY = 'eval/held_out_accuracy'


def validate(config) -> None:
  """Start-up checks of the `mae` section."""
  common.check_no_feature_space(config, NAME)
  m = config.mae
  config_lib.check_at_least_one('mae', m,
                                ('steps', 'batch_size', 'width', 'patch'))
  if not m.blocks or min(m.blocks) < 1:
    raise ValueError(f'`mae.blocks` must list >= 1 block per stage, got '
                     f'{tuple(m.blocks)}.')
  if not 0 < m.mask_ratio < 1:
    raise ValueError(f'`mae.mask_ratio` must be in (0, 1), got '
                     f'{m.mask_ratio}.')
  if not m.lr > 0:
    raise ValueError(f'`mae.lr` must be > 0, got {m.lr}.')
  if m.cls_weight < 0:
    raise ValueError(f'`mae.cls_weight` must be >= 0, got {m.cls_weight}.')
  if config.conditional.enabled:
    raise ValueError("`conditional.enabled` does not apply to "
                     f"method={NAME!r} (pre-training sees every class).")


def prerequisites(config) -> dict:
  """An MAE needs nothing trained before it."""
  del config
  return {}


def run_config(config, seed: int, schema) -> ml_collections.ConfigDict:
  """The MAE run a student of `config` trains first, with `seed`."""
  return common.pretraining_run_config(config, NAME, 'mae', seed, schema)


class NetworkShape(NamedTuple):
  """What fixes the MAE's parameter shapes (hashable, for the spec)."""
  width: int
  blocks: tuple
  head: bool


def network_shape(mae_config) -> NetworkShape:
  return NetworkShape(int(mae_config.width), tuple(mae_config.blocks),
                      bool(mae_config.cls_weight))


def build(image_shape, num_classes, network: NetworkShape,
          seed) -> MAEResNet:
  """The network, with a head when the fine-tune term is on."""
  return MAEResNet(tuple(image_shape), width=network.width,
                   blocks=network.blocks,
                   num_classes=num_classes if network.head else 0,
                   rngs=nnx.Rngs(seed))


@dataclasses.dataclass(frozen=True)
class MAESpec:
  """Everything an MAE step needs, built once by `make_spec`."""
  image_shape: tuple
  num_classes: int
  seed: int
  batch_size: int
  patch: int
  mask_ratio: float
  cls_weight: float
  network: NetworkShape
  tx: optax.GradientTransformation
  graphdef: object


def make_spec(mae_config, image_shape, num_classes) -> MAESpec:
  m = mae_config
  return MAESpec(
      image_shape=tuple(image_shape), num_classes=num_classes, seed=m.seed,
      batch_size=m.batch_size, patch=m.patch, mask_ratio=m.mask_ratio,
      cls_weight=m.cls_weight, network=network_shape(m),
      tx=optax.adam(optax.cosine_decay_schedule(m.lr, m.steps)),
      graphdef=nnx.split(nnx.eval_shape(lambda: build(
          image_shape, num_classes, network_shape(m), 0)))[0])


def make(config, ctx: RunContext) -> common.Method:
  """The MAE method for image data `ctx.data`."""
  data = ctx.data
  if data is None or data.image_shape is None:
    raise ValueError(f'method={NAME!r} needs image data; data '
                     f'{config.data.name!r} has none.')
  if config.mae.cls_weight and data.num_classes < 2:
    raise ValueError('`mae.cls_weight` > 0 needs labelled images.')
  spec = make_spec(config.mae, data.image_shape, data.num_classes)
  constants = {'images': jnp.asarray(data.train),
               'held_out': jnp.asarray(data.held_out)}
  if spec.cls_weight:
    constants.update(labels=jnp.asarray(data.labels),
                     held_out_labels=jnp.asarray(data.held_out_labels))
  return common.Method(functools.partial(init, spec),
                       functools.partial(train_step, spec), None, constants,
                       evaluate=functools.partial(evaluate, spec))


def init(spec: MAESpec, key):
  """Parameters from `mae.seed` (not the runner's key, as the
  classifier's) and Adam's state; the image shape travels with them."""
  del key
  _, params = nnx.split(build(spec.image_shape, spec.num_classes,
                              spec.network, spec.seed))
  return common.image_network_state(params, spec.tx, spec.image_shape)


def abstract_state(spec: MAESpec):
  """The shapes of an MAE run's state, for restoring one."""
  return jax.eval_shape(lambda: init(spec, None))


def loss_terms(spec: MAESpec, params, images, mask, labels=None):
  """(masked MSE, cross-entropy or 0) of a minibatch."""
  model = nnx.merge(spec.graphdef, params)
  mse = masked_mse(model.reconstruct(images * (1 - mask)), images, mask)
  if not spec.cls_weight:
    return mse, jnp.zeros(())
  ce = optax.softmax_cross_entropy_with_integer_labels(
      model.logits(images), labels).mean()
  return mse, ce


def train_step(spec: MAESpec, state, constants, batch, key, step=0):
  """One Adam step on a minibatch from (`mae.seed`, step)."""
  del batch, key
  draw = common.own_minibatch_key(spec.seed, step)
  pick, mask_key = jax.random.split(draw)
  idx = jax.random.randint(pick, (spec.batch_size,), 0,
                           constants['images'].shape[0])
  images = constants['images'][idx]
  mask = patch_mask(mask_key, spec.batch_size, spec.image_shape, spec.patch,
                    spec.mask_ratio)
  labels = constants['labels'][idx] if spec.cls_weight else None

  def loss_fn(params):
    mse, ce = loss_terms(spec, params, images, mask, labels)
    return mse + spec.cls_weight * ce, (mse, ce)

  (loss, (mse, ce)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state['params'])
  metrics = {'train/loss': loss, 'train/masked_mse': mse}
  if spec.cls_weight:
    metrics['train/cross_entropy'] = ce
  return common.image_network_update(state, grads, spec.tx), metrics


def evaluate(spec: MAESpec, state, constants) -> dict:
  """Held-out masked MSE under a fixed mask (and accuracy with a head)."""
  held = constants['held_out']
  mask = patch_mask(jax.random.key(0x3A5C), held.shape[0], spec.image_shape,
                    spec.patch, spec.mask_ratio)
  labels = constants.get('held_out_labels')
  mse, _ = jax.jit(functools.partial(loss_terms, spec))(
      state['params'], held, mask, labels)
  out = {MSE: float(mse)}
  if spec.cls_weight:
    logits = jax.jit(lambda p, x: nnx.merge(spec.graphdef, p).logits(x))(
        state['params'], held)
    out[ACCURACY] = float(jnp.mean(jnp.argmax(logits, -1) == labels))
  return out
