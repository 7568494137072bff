"""Drifting generator (Deng et al. 2026, Alg. 1).

x = f(z); V = V_p(x) - V_q(x) from `fields.drifting_field` with the data
batch as positives and the generated batch as (self-masked) negatives;
loss = 1/2 mean ||x - sg(x + V)||^2, so the generator follows V.

`field.negatives_scope` says which generated samples the field sees:
'global' gathers the whole global batch (results independent of the device
count), 'local' runs the field per device on its own shard
(`jax.shard_map`), as a per-device implementation would.

Feature space and classes (`drift_jax.features`): with an encoder
(`features.encoder`) the loss is the sum over the encoder's feature sets of
one drifting loss per feature vector, gradients flowing through the frozen
encoder into the generator (Deng Eq. 14); with `conditional.enabled` the
field runs per class against that class's positives, with the batch's
real samples as unconditional negatives weighted for a guidance scale
alpha ~ U[alpha_min, alpha_max] drawn per class and step, and the generator
is conditioned on (label, alpha) (Deng §3.5). Both use the global scope.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax import features
from drift_jax import fields
from drift_jax import losses
from drift_jax import models
from drift_jax import parallel
from drift_jax.methods import common

NEGATIVES_SCOPES = ('global', 'local')


def make_field_fn(field_config, mesh):
  """(x [N, D], pos [M, D]) -> V [N, D], negatives = x, per the config."""
  field = functools.partial(
      fields.drifting_field, kernel=field_config.kernel,
      temperature=tuple(field_config.temperatures),
      normalization=field_config.normalization,
      mask_self=field_config.mask_self,
      normalize_distances=field_config.normalize_distances,
      normalize_drift=field_config.normalize_drift,
      affinity_floor=field_config.affinity_floor,
      block_size=field_config.block_size or None,
      pos_scale=field_config.pos_scale, neg_scale=field_config.neg_scale)
  if field_config.negatives_scope == 'local':
    return parallel.per_device(lambda x, pos: field(x, pos, x), mesh, 2)

  def global_field(x, pos):
    x, pos = parallel.gather_global(x, mesh), parallel.gather_global(pos, mesh)
    return parallel.shard_batch(field(x, pos, x), mesh)
  return global_field


def make_group_field(field_config):
  """(x [n, F], pos [P, F], neg [n + U, F], neg_weights or None) -> V, the
  per-group field of `features.grouped_field` (neg[:n] is x, self-masked)."""
  def field(x, pos, neg, neg_weights):
    return fields.drifting_field(
        x, pos, neg, kernel=field_config.kernel,
        temperature=tuple(field_config.temperatures),
        normalization=field_config.normalization,
        mask_self=field_config.mask_self, neg_weights=neg_weights,
        normalize_distances=field_config.normalize_distances,
        normalize_drift=field_config.normalize_drift,
        affinity_floor=field_config.affinity_floor,
        block_size=field_config.block_size or None,
        pos_scale=field_config.pos_scale, neg_scale=field_config.neg_scale)
  return field


def make_embed(encoder, features_config):
  """(constants, x [N, D]) -> feature sets {name: [L, N, F]}: the encoder's
  (plus the raw sample when `features.raw`), or just the raw sample."""
  if encoder is None:
    return lambda constants, x: {features.RAW: x[None]}

  def embed(constants, x):
    maps = encoder.feature_maps(constants['encoder'], x)
    return features.feature_sets(
        maps, raw=x if features_config.raw else None,
        patch_sizes=tuple(features_config.patch_sizes))
  return embed


def make(config, *, dim: int, mesh, teacher=None, image_shape=None,
         num_classes: int = 0, encoder=None) -> common.Method:
  """Drifting method from the run config (uses model.generator, optim,
  field, features, conditional, train.gen_batch_size, train.ema_decay).

  `num_classes` > 0 makes it class-conditional (with CFG); `encoder` (a
  frozen `classifier.Classifier`) makes it feature-space.
  """
  del teacher  # drifting needs no teacher
  gen = common.Network.create(lambda rngs: models.make_generator(
      config.model.generator, dim, rngs, image_shape=image_shape,
      num_classes=num_classes))
  noise_dim = config.model.generator.noise_dim
  tx = common.make_optimizer(config.optim,
                                total_steps=config.train.steps)
  gen_batch = config.train.gen_batch_size
  ema_decay = config.train.ema_decay
  grouped = num_classes > 0 or encoder is not None
  if grouped and config.field.negatives_scope != 'global':
    raise ValueError("Feature-space and class-conditional drifting need "
                     "`field.negatives_scope='global'`.")
  field_fn = make_field_fn(config.field, mesh)
  group_field = make_group_field(config.field)
  embed = make_embed(encoder, config.features)
  cond = config.conditional
  constants = {'encoder': encoder.params} if encoder is not None else ()

  def init(key):
    return {'gen': common.net_state(gen.init(key), tx, ema=ema_decay > 0)}

  def grouped_loss(x, data, constants, alpha):
    """Sum over feature sets and locations of the per-vector losses."""
    x = parallel.gather_global(x, mesh)
    data = parallel.gather_global(data, mesh)
    fx, fp = embed(constants, x), lax.stop_gradient(embed(constants, data))
    total, sq_sum, count = 0.0, 0.0, 0
    for name in fx:
      v = features.grouped_field(
          group_field, fx[name], fp[name], num_classes=max(num_classes, 1),
          uncond=fp[name] if num_classes else None, alpha=alpha)
      # One loss per feature vector, summed (Deng Eq. 14): L locations.
      total = total + fx[name].shape[0] * losses.drift_loss(fx[name], v)
      sq_sum, count = sq_sum + jnp.sum(v**2), count + v.shape[0] * v.shape[1]
    return total, jnp.sqrt(sq_sum / count)

  def train_step(state, constants, batch, key):
    data, _ = common.split_batch(batch)
    z = common.generator_noise(key, gen_batch, noise_dim, mesh)
    alpha_per_class, extra = None, ()
    if num_classes:
      labels = common.class_major_labels(gen_batch, num_classes)
      alpha_per_class = jax.random.uniform(
          jax.random.fold_in(key, 5), (num_classes,), minval=cond.alpha_min,
          maxval=cond.alpha_max)
      extra = (labels, alpha_per_class[labels])

    def loss_fn(params):
      x = gen.apply(params, z, *extra)  # [G, D]
      if grouped:
        return grouped_loss(x, data, constants, alpha_per_class)
      v = field_fn(x, data)  # [G, D], no gradient
      return losses.drift_loss(x, v), v

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state['gen']['params'])
    drift_rms = aux if grouped else jnp.sqrt(jnp.mean(jnp.sum(aux**2, -1)))
    new_gen = common.apply_gradients(state['gen'], grads, tx, ema_decay)
    metrics = {'train/loss': loss, 'train/drift_rms': drift_rms}
    return {'gen': new_gen}, metrics

  def sample(state, constants, key, n):
    del constants
    z = jax.random.normal(key, (n, noise_dim))
    extra = ()
    if num_classes:
      extra = (common.class_major_labels(n, num_classes),
               jnp.full((n,), cond.eval_alpha))
    return gen.apply(common.eval_params(state['gen']), z, *extra)

  return common.Method(init, train_step, sample, constants)
