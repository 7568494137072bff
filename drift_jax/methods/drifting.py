"""Drifting generator (Deng et al. 2026, Alg. 1).

x = f(z); V = V_p(x) - V_q(x) from `fields.drifting_field` with the data
batch as positives and the generated batch as (self-masked) negatives;
loss = 1/2 mean ||x - sg(x + V)||^2, so the generator follows V.

`field.negatives_scope` says which generated samples the field sees:
'global' gathers the whole global batch (results independent of the device
count), 'local' runs the field per device on its own shard
(`jax.shard_map`), as a per-device implementation would.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

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


def make(config, *, dim: int, mesh, teacher=None) -> common.Method:
  """Drifting method from the run config (uses model.generator, optim,
  field, train.gen_batch_size, train.ema_decay)."""
  del teacher  # drifting needs no teacher
  gen = common.Network.create(
      lambda rngs: models.make_generator(config.model.generator, dim, rngs))
  noise_dim = config.model.generator.noise_dim
  tx = common.make_optimizer(config.optim,
                                total_steps=config.train.steps)
  field_fn = make_field_fn(config.field, mesh)
  gen_batch = config.train.gen_batch_size
  ema_decay = config.train.ema_decay

  def init(key):
    return {'gen': common.net_state(gen.init(key), tx, ema=ema_decay > 0)}

  def train_step(state, constants, batch, key):
    del constants
    z = common.generator_noise(key, gen_batch, noise_dim, mesh)

    def loss_fn(params):
      x = gen.apply(params, z)  # [G, D]
      v = field_fn(x, batch)  # [G, D], no gradient
      return losses.drift_loss(x, v), v

    (loss, v), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state['gen']['params'])
    new_gen = common.apply_gradients(state['gen'], grads, tx, ema_decay)
    metrics = {'train/loss': loss,
               'train/drift_rms': jnp.sqrt(jnp.mean(jnp.sum(v**2, -1)))}
    return {'gen': new_gen}, metrics

  def sample(state, constants, key, n):
    del constants
    z = jax.random.normal(key, (n, noise_dim))
    return gen.apply(common.eval_params(state['gen']), z)

  return common.Method(init, train_step, sample)
