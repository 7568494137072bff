"""Drifting generator (Deng et al. 2026, Alg. 1).

x = f(z); V = V_p(x) - V_q(x) from `fields.FieldSpec` (the config's
`field` section) with the data batch as positives and the generated batch
as (self-masked) negatives; loss = 1/2 mean ||x - sg(x + V)||^2, so the
generator follows V.

The `field` section is `fields.FieldSpec`'s schema; the method's own
options are in the `drifting` section. `drifting.negatives_scope` says
which generated samples the field sees:
'global' gathers the whole global batch (results independent of the device
count), 'local' runs the field per device on its own shard
(`jax.shard_map`), as a per-device implementation would.

Feature space and classes (`drift_jax.fields.features`): with an encoder (the
prerequisite `features.encoder`) the loss is the sum over the encoder's
feature sets of one drifting loss per feature vector, gradients flowing
through the frozen encoder into the generator (Deng Eq. 14); with
`conditional.enabled` the field runs per class against that class's
positives (grouped by the batch's labels), with the batch's real samples
as unconditional negatives weighted for a guidance scale
alpha ~ U[alpha_min, alpha_max] drawn per class and step, and the
generator is conditioned on (label, alpha) (Deng §3.5). Both use the
global scope.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from absl import logging
from jax import lax

from drift_jax import encoders
from drift_jax import fields
from drift_jax import models
from drift_jax.config import config_lib
from drift_jax.data import datasets as data_lib
from drift_jax.fields import features
from drift_jax.methods import common
from drift_jax.methods.context import Prerequisite
from drift_jax.methods.context import RunContext
from drift_jax.models import precision
from drift_jax.parallel import sharding as parallel
from drift_jax.theory import losses
from drift_jax.train import workdir as workdir_lib

NAME = 'drifting'
NEGATIVES_SCOPES = ('global', 'local')
TEMPERATURE_SCHEDULES = ('constant', 'exponential')

CONFIG = {
    # The field's options: `fields.FieldSpec`, the one schema.
    'field': fields.FieldSpec.config_section(),
    # How the method uses the field. temperature_schedule: 'constant', or
    # 'exponential': tau_k(step) = max(tau_k exp(-anneal_rate step),
    # min_temperature) (Turan & Ovsjanikov 2603.09936), traced: no
    # recompiles.
    'drifting': dict(negatives_scope='global',
                     temperature_schedule='constant', anneal_rate=0.0,
                     min_temperature=0.0),
    # The frozen feature encoder of feature-space drifting: 'none' (raw
    # samples), 'train' (trained into workdir/encoder) or its directory;
    # encoder_kind: a key of `drift_jax.encoders.ENCODERS`.
    # location_chunk: 0, every location's field at once; k > 0, k at a
    # time (memory ~ k instead of a map's H W locations).
    # max_locations: leave out feature sets with more vectors than this
    # (the finest maps' per-location sets; 0 keeps every set).
    # encoder_share: the encoder's share of a study's compute budget (the
    # harness charges an encoder trained here to drifting's budget, as a
    # teacher is charged to DMD's, and writes its length).
    'features': dict(encoder='none', encoder_kind='classifier', raw=True,
                     patch_sizes=(2, 4), location_chunk=0,
                     max_locations=0, encoder_share=0.5),
}
# Keys that moved here from the `field` section: a config.json written
# before is compared under the new names when a run resumes.
RENAMED = {f'field.{name}': f'drifting.{name}' for name in CONFIG['drifting']}


# `sample` follows `conditional.eval_alpha`: `load_generator(guidance=...)`
# may set it.
GUIDED_SAMPLING = True


# `train.microbatches` > 1 splits the generated batch: two-pass accumulation
# (`two_pass_loss_and_grads`).
MICROBATCHES = 'gen_batch_size'


def authors_field_recipe(c) -> None:
  """The drifting paper's full field recipe (Deng App. A.6) instead of the
  demo's single temperature: distances divided by their batch mean,
  temperatures (0.02, 0.05, 0.2), each temperature's drift divided by its
  RMS. The default of configs/toy2d.py (README, "Quality bar": 1.48x vs
  2.80x the energy-distance floor on the checkerboard over 3 seeds) and of
  configs/digits.py (it makes the temperatures independent of the
  dimension)."""
  c.field.update(temperatures=(0.02, 0.05, 0.2), normalize_distances=True,
                 normalize_drift=True)


# The leaderboard's one drifting learning rate across its tasks
# (docs/leaderboard.md, "The default drifting config").
LEADERBOARD_LR = 3e-3


def leaderboard_defaults(c) -> None:
  """The core suite's cross-task drifting point (suites/core.py): the
  authors' field recipe at lr 3e-3. Of lr 1e-3 / 3e-3 x temperatures
  (0.02, 0.05, 0.2) / 2.5x those, it had the lowest validation energy
  distance on every toy task at 20 s budgets, and the lowest geometric mean
  over all six tasks (tests/configs_test.py checks it against the stored
  results). Runs published before it used lr 1e-3; their sweeps pin it."""
  authors_field_recipe(c)
  c.optim.lr = LEADERBOARD_LR

def validate(config) -> None:
  """Start-up checks of the `field` and `features` sections."""
  try:
    fields.FieldSpec.from_config(config.field)
  except ValueError as e:
    raise ValueError(f'Config section `field`: {e}') from None
  config_lib.check_choice('drifting.negatives_scope',
                          config.drifting.negatives_scope, NEGATIVES_SCOPES)
  encoder = config.features.encoder
  if encoder != 'none':
    config_lib.check_prerequisite('features.encoder', encoder,
                                  extra=('none',))
    encoders.get(config.features.encoder_kind)
    _check_not_the_evaluation_network(encoder, config.eval.classifier)
  if not 0 < config.features.get('encoder_share', 0.5) < 1:
    raise ValueError('`features.encoder_share` must be in (0, 1), got '
                     f'{config.features.encoder_share}.')
  if config.features.get('max_locations', 0) < 0:
    raise ValueError('`features.max_locations` must be >= 0 (0: every '
                     f'set), got {config.features.max_locations}.')
  if config.features.get('location_chunk', 0) < 0:
    raise ValueError('`features.location_chunk` must be >= 0, got '
                     f'{config.features.location_chunk}.')
  if ((encoder != 'none' or config.conditional.enabled)
      and config.drifting.negatives_scope != 'global'):
    raise ValueError("Feature-space and class-conditional drifting need "
                     "`drifting.negatives_scope='global'`.")
  _validate_schedule(config.drifting)


def _check_not_the_evaluation_network(encoder: str, classifier: str):
  """A run never evaluates in a network it trains in: the feature encoder
  and the evaluation classifier must be different runs."""
  if (encoder != workdir_lib.TRAIN_HERE and classifier not in
      (workdir_lib.TRAIN_HERE, 'none', '') and os.path.realpath(encoder)
      == os.path.realpath(classifier)):
    raise ValueError(f'`features.encoder` and `eval.classifier` both name '
                     f'{encoder!r}: a run must not be scored in the network '
                     'it trains in (train the evaluation classifier '
                     "separately, eval.classifier='train').")


def _validate_schedule(d) -> None:
  config_lib.check_choice('drifting.temperature_schedule',
                          d.temperature_schedule, TEMPERATURE_SCHEDULES)
  for name in ('anneal_rate', 'min_temperature'):
    if not (math.isfinite(d[name]) and d[name] >= 0):
      raise ValueError(f'`drifting.{name}` must be finite and >= 0, got '
                       f'{d[name]}.')
  if d.temperature_schedule == 'exponential':
    if d.anneal_rate <= 0:
      raise ValueError("`drifting.anneal_rate` must be > 0 with "
                       "drifting.temperature_schedule='exponential'.")
    if d.negatives_scope != 'global':
      raise ValueError("A temperature schedule needs "
                       "`drifting.negatives_scope='global'`.")


def temperature_schedule(config):
  """step -> [K] temperature scales, or None for constant temperatures:
  s_k(step) = max(exp(-anneal_rate step), min_temperature / tau_k), from
  the `drifting` section and the field's temperatures."""
  d = config.drifting
  if d.temperature_schedule == 'constant':
    return None
  rate = float(d.anneal_rate)
  temperatures = fields.FieldSpec.from_config(config.field).temperatures
  floors = jnp.asarray([d.min_temperature / t for t in temperatures],
                       jnp.float32)

  def scale(step):
    return jnp.maximum(jnp.exp(-rate * jnp.asarray(step, jnp.float32)),
                       floors)
  return scale


def prerequisites(config) -> dict[str, Prerequisite]:
  """The feature encoder, when `features.encoder` names one."""
  if config.features.encoder == 'none':
    return {}
  return {'encoder': Prerequisite(
      'encoder', config.features.encoder,
      length_key=encoders.get(config.features.encoder_kind).LENGTH_KEY,
      share_key='features.encoder_share')}


def make_field_fn(field_spec: fields.FieldSpec, mesh, scope='global'):
  """(x [N, D], pos [M, D], temperature_scale=None) -> V [N, D],
  negatives = x, in `scope` (a schedule needs the global scope)."""
  if scope == 'local':
    local = parallel.per_device(lambda x, pos: field_spec(x, pos, x), mesh,
                                2)
    return lambda x, pos, temperature_scale=None: local(x, pos)

  def global_field(x, pos, temperature_scale=None):
    x, pos = parallel.gather_global(x, mesh), parallel.gather_global(pos, mesh)
    return parallel.shard_batch(
        field_spec(x, pos, x, temperature_scale=temperature_scale), mesh)
  return global_field


def field_fn_from_config(config, mesh):
  """`make_field_fn` for a run config (its `field` section, and the scope
  in `drifting`; a config.json written before the scope moved there has it
  in `field`)."""
  scope = (config.drifting.negatives_scope if 'drifting' in config
           else config.field.get('negatives_scope', 'global'))
  return make_field_fn(fields.FieldSpec.from_config(config.field), mesh,
                       scope)


def make_group_field(field_spec: fields.FieldSpec):
  """(x [n, F], pos [P, F], neg [n + U, F], neg_weights or None) -> V, the
  per-group field of `features.grouped_field` (neg[:n] is x, self-masked)."""
  def field(x, pos, neg, neg_weights, temperature_scale=None):
    return field_spec(x, pos, neg, neg_weights=neg_weights,
                      temperature_scale=temperature_scale)
  return field


def make_embed(encoder, features_config):
  """(constants, x [N, D]) -> feature sets {name: [L, N, F]}: the encoder's
  (plus the raw sample when `features.raw`), or just the raw sample."""
  if encoder is None:
    return lambda constants, x: {features.RAW: x[None]}
  # Read the config now, not while tracing.
  with_raw, patch_sizes = bool(features_config.raw), tuple(
      features_config.patch_sizes)
  most = int(features_config.get('max_locations', 0))

  def embed(constants, x):
    maps = encoder.feature_maps(constants['encoder'], x)
    sets = features.feature_sets(maps, raw=x if with_raw else None,
                                 patch_sizes=patch_sizes)
    # A key's field costs ~ its locations (`features.field_costs`): the
    # finest maps' per-location sets dominate a step and may be left out.
    return {k: v for k, v in sets.items() if not most or v.shape[0] <= most}
  return embed


@dataclasses.dataclass(frozen=True)
class DriftingSpec:
  """Everything a drifting step needs, built once from config and context."""
  gen: common.Network
  tx: Any
  field_fn: Callable  # (x, pos) -> V, ungrouped runs
  group_field: Callable  # per-group field, grouped runs
  embed: Callable  # (constants, x) -> feature sets
  mesh: Any
  noise_dim: int
  gen_batch: int
  ema_decay: float
  num_classes: int
  grouped: bool  # feature space or class-conditional
  alpha_range: tuple[float, float]
  eval_alpha: float
  schedule: Callable | None = None  # step -> [K] temperature scales
  location_chunk: int = 0  # features.location_chunk
  microbatches: int = 1  # train.microbatches (two-pass accumulation)


def make(config, ctx: RunContext) -> common.Method:
  """Drifting method from the run config (model.generator, optim, field,
  features, conditional, train) and the run context (`ctx.num_classes` > 0:
  class-conditional with CFG; prerequisite 'encoder': feature space)."""
  spec = make_spec(config, ctx)
  encoder = ctx.get('encoder')
  constants = {'encoder': encoder.params} if encoder is not None else ()
  if encoder is not None:
    log_feature_costs(spec, constants, ctx.dim, config.train.batch_size)
  return common.Method(functools.partial(init, spec),
                       functools.partial(train_step, spec),
                       functools.partial(sample, spec), constants)


def make_spec(config, ctx: RunContext) -> DriftingSpec:
  """The `DriftingSpec` of a run config and context (`make`)."""
  encoder = ctx.get('encoder')
  spec_field = fields.FieldSpec.from_config(config.field)
  cond = config.conditional
  gen_config = common.frozen(config.model.generator)
  return DriftingSpec(
      gen=common.Network.create(lambda rngs: models.make_generator(
          gen_config, ctx.dim, rngs, image_shape=ctx.image_shape,
          num_classes=ctx.num_classes), precision.compute_dtype(config)),
      tx=common.make_optimizer(config.optim, total_steps=config.train.steps),
      field_fn=make_field_fn(spec_field, ctx.mesh,
                             config.drifting.negatives_scope),
      group_field=make_group_field(spec_field),
      embed=make_embed(encoder, config.features), mesh=ctx.mesh,
      noise_dim=config.model.generator.noise_dim,
      gen_batch=config.train.gen_batch_size,
      ema_decay=config.train.ema_decay, num_classes=ctx.num_classes,
      grouped=ctx.num_classes > 0 or encoder is not None,
      alpha_range=(cond.alpha_min, cond.alpha_max),
      eval_alpha=cond.eval_alpha,
      schedule=temperature_schedule(config),
      location_chunk=int(config.features.get('location_chunk', 0)),
      microbatches=int(config.train.get('microbatches', 1)))


def feature_costs(spec: DriftingSpec, constants, dim: int,
                  data_batch: int) -> dict:
  """`features.field_costs` of this run's feature keys: per key its
  vectors, their dimension and its field's GFLOPs per step."""
  x = jax.ShapeDtypeStruct((spec.gen_batch, dim), jnp.float32)
  pos = jax.ShapeDtypeStruct((data_batch, dim), jnp.float32)
  return features.field_costs(
      spec.group_field, jax.eval_shape(spec.embed, constants, x),
      jax.eval_shape(spec.embed, constants, pos),
      num_classes=max(spec.num_classes, 1))


def log_feature_costs(spec, constants, dim, data_batch) -> None:
  """Logs what each feature key's field costs (where the step's time
  goes as keys are added; the encoder's own passes are shared)."""
  costs = feature_costs(spec, constants, dim, data_batch)
  logging.info('Drifting feature keys (vectors x dim: field GFLOPs per '
               'step, share): %s', '; '.join(
                   f'{k} {c["vectors"]}x{c["dim"]}: {c["gflops"]:.3g} '
                   f'({c["share"]:.0%})' for k, c in costs.items()))


def init(spec: DriftingSpec, key):
  return {'gen': common.net_state(spec.gen.init(key), spec.tx,
                                  ema=spec.ema_decay > 0)}


def grouped_fields(spec: DriftingSpec, x, data, data_labels, constants,
                   alpha, temperature_scale=None) -> dict:
  """{feature set: (its vectors of x [L, N, F], their field V)}, per class
  group when conditional: the field of the whole batch x."""
  x = parallel.gather_global(x, spec.mesh)
  data = parallel.gather_global(data, spec.mesh)
  if spec.num_classes:
    # Group the data by their labels (class-major, equal counts per class
    # in class-balanced batches), whatever the order of the rows.
    data = data[jnp.argsort(data_labels, stable=True)]
  fx = spec.embed(constants, x)
  fp = lax.stop_gradient(spec.embed(constants, data))
  return {name: (fx[name], features.grouped_field(
      functools.partial(spec.group_field,
                        temperature_scale=temperature_scale),
      fx[name], fp[name],
      num_classes=max(spec.num_classes, 1),
      uncond=fp[name] if spec.num_classes else None, alpha=alpha,
      location_chunk=spec.location_chunk)) for name in fx}


def summed_loss(terms: dict):
  """(loss, drift RMS) of `grouped_fields`' terms: one loss per feature
  vector, summed over the L locations of each set (Deng Eq. 14)."""
  total, sq_sum, count = 0.0, 0.0, 0
  for f, v in terms.values():
    total = total + f.shape[0] * losses.drift_loss(f, v)
    sq_sum, count = sq_sum + jnp.sum(v**2), count + v.shape[0] * v.shape[1]
  return total, jnp.sqrt(sq_sum / count)


def grouped_loss(spec: DriftingSpec, x, data, data_labels, constants, alpha,
                 temperature_scale=None):
  """Sum over feature sets and locations of the per-vector losses, per
  class group when conditional; returns (loss, drift RMS)."""
  return summed_loss(grouped_fields(spec, x, data, data_labels, constants,
                                    alpha, temperature_scale))


def train_step(spec: DriftingSpec, state, constants, batch, key, step=0):
  data, data_labels = common.split_batch(batch)
  scale = None if spec.schedule is None else spec.schedule(step)
  z = common.generator_noise(key, spec.gen_batch, spec.noise_dim, spec.mesh)
  alpha_per_class, cond = None, {}
  if spec.num_classes:
    labels = data_lib.class_major_labels(spec.gen_batch, spec.num_classes)
    alpha_per_class = jax.random.uniform(
        jax.random.fold_in(key, 5), (spec.num_classes,),
        minval=spec.alpha_range[0], maxval=spec.alpha_range[1])
    cond = dict(labels=labels, alpha=alpha_per_class[labels])

  loss, drift_rms, grads = loss_and_grads(
      spec, state['gen']['params'], constants, z, cond, data, data_labels,
      alpha_per_class, scale)
  new_gen = common.apply_gradients(state['gen'], grads, spec.tx,
                                   spec.ema_decay)
  metrics = {'train/loss': loss, 'train/drift_rms': drift_rms}
  if scale is not None:
    metrics['train/temperature_scale'] = scale[0]
  return {'gen': new_gen}, metrics


def loss_and_grads(spec: DriftingSpec, params, constants, z, cond, data,
                   data_labels, alpha, scale):
  """(loss, drift RMS, gradient) of the drifting loss of the generated batch
  G(z); over `spec.microbatches` micro-batches by two passes when > 1."""
  if spec.microbatches > 1:
    return two_pass_loss_and_grads(spec, params, constants, z, cond, data,
                                   data_labels, alpha, scale)

  def loss_fn(params):
    x = spec.gen.apply(params, z, **cond)  # [G, D]
    if spec.grouped:
      return grouped_loss(spec, x, data, data_labels, constants, alpha,
                          scale)
    v = spec.field_fn(x, data, temperature_scale=scale)  # [G, D], no grad
    return losses.drift_loss(x, v), v

  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  drift_rms = (aux if spec.grouped
               else jnp.sqrt(jnp.mean(jnp.sum(aux**2, -1))))
  return loss, drift_rms, grads


def two_pass_loss_and_grads(spec: DriftingSpec, params, constants, z, cond,
                            data, data_labels, alpha, scale):
  """The drifting loss of the whole batch G(z), its gradient accumulated
  over `spec.microbatches` micro-batches.

  The loss 1/2 mean |f(x) - sg(f(x) + V)|^2 (Deng Eq. 6, per feature
  vector Eq. 14) sends its gradient through f(x) alone, -V / size, while V
  and its global normalisations (the distance scale, each temperature's
  drift normalisation) depend on the whole batch: a micro-batch that
  computed its own V would take its statistics from a fraction of the
  batch and change the loss. Pass 1, without gradients, generates the
  whole batch and computes its V. Pass 2 regenerates it micro-batch by
  micro-batch (`lax.scan`, one micro-batch's activations alive at a time)
  and sums their gradients against the fixed V: the full-batch gradient.
  """
  m = spec.microbatches
  x = spec.gen.apply(lax.stop_gradient(params), z, **cond)
  if spec.grouped:  # [L, N, F] per feature set
    terms, axis = grouped_fields(spec, x, data, data_labels, constants,
                                 alpha, scale), 1
    loss, drift_rms = summed_loss(terms)
  else:  # [N, D]
    v = spec.field_fn(x, data, temperature_scale=scale)
    terms, axis = {'x': (x, v)}, 0
    loss = losses.drift_loss(x, v)
    drift_rms = jnp.sqrt(jnp.mean(jnp.sum(v**2, -1)))
  # Each set's loss is (L or 1) x 1/2 sum(...) / f.size, over the batch.
  weights = {k: (f.shape[0] if spec.grouped else 1) / f.size
             for k, (f, _) in terms.items()}
  fields_by_micro = {k: lax.stop_gradient(common.micro_split(v, m, axis))
                     for k, (_, v) in terms.items()}

  def micro_loss(params, z_m, cond_m, v_m):
    x_m = spec.gen.apply(params, z_m, **cond_m)
    f_m = spec.embed(constants, x_m) if spec.grouped else {'x': x_m}
    return sum(weights[k] * 0.5 * jnp.sum(
        (f_m[k] - lax.stop_gradient(f_m[k] + v_m[k]))**2) for k in v_m)

  micro_cond = {k: common.micro_split(c, m) for k, c in cond.items()}
  _, grads = common.summed_value_and_grad(micro_loss, params, (
      common.micro_split(z, m), micro_cond, fields_by_micro))
  return loss, drift_rms, grads


def sample(spec: DriftingSpec, state, constants, key, n):
  """Samples at the evaluation guidance scale `conditional.eval_alpha`."""
  del constants
  return common.sample_generator(spec.gen, state['gen'], key, n,
                                 noise_dim=spec.noise_dim,
                                 num_classes=spec.num_classes,
                                 alpha=spec.eval_alpha)

