"""Pieces every method shares, so comparisons differ only in V.

A method is three pure functions (`Method`): `init(key) -> state`,
`train_step(state, constants, batch, key, step) -> (state, metrics)` (step:
the traced step number, for schedules) and
`sample(state, constants, key, n) -> [n, D]`; a method that does not
generate (the classifier) has no `sample` and evaluates itself instead
(`evaluate(state, constants) -> eval metrics`). The state is a plain dict
pytree (orbax saves it as is); `constants` holds frozen arrays such as a
teacher's parameters, passed to every call and never checkpointed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx
from jax import lax

from drift_jax import models
from drift_jax.config import config_lib
from drift_jax.data import datasets as data_lib
from drift_jax.models import precision
from drift_jax.parallel import sharding as parallel


class Method(NamedTuple):
  init: Callable[[jax.Array], dict]
  train_step: Callable[..., tuple[dict, dict]]
  sample: Callable[..., jax.Array] | None
  constants: Any = ()  # frozen pytree handed to train_step and sample
  # None: the runner scores `sample`'s output with `eval.evaluators`.
  evaluate: Callable[..., dict] | None = None


class Network(NamedTuple):
  """An NNX module split once: static graph + a pure apply function.

  `nnx.merge` inside the traced step is free at run time (the Flax
  performance guide's split/merge pattern around a plain `jax.jit`).
  """
  graphdef: Any
  build: Callable[[nnx.Rngs], nnx.Module]
  compute_dtype: Any = None  # `precision.compute_dtype` (None: float32)

  @classmethod
  def create(cls, build, compute_dtype=None):
    """`build(rngs)` runs again inside the traced `init`: it must read only
    frozen values (see `frozen`), never a mutable config. With a
    `compute_dtype` the network computes in it (`precision.apply_policy`),
    its parameters float32."""
    if compute_dtype is not None:
      build = functools.partial(_with_policy, build, compute_dtype)
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: build(nnx.Rngs(0))))
    return cls(graphdef, build, compute_dtype)

  def init(self, key):
    _, params = nnx.split(self.build(nnx.Rngs(key)))
    return params

  def apply(self, params, *args, **kwargs):
    out = nnx.merge(self.graphdef, params)(*args, **kwargs)
    if self.compute_dtype is None:
      return out
    # Float32 outputs: the field, the losses and DMD's score difference
    # are computed in float32 whatever the network's compute dtype.
    return jax.tree.map(
        lambda a: a.astype(jnp.float32)
        if jnp.issubdtype(a.dtype, jnp.floating) else a, out)


def _with_policy(build, compute_dtype, rngs):
  return precision.apply_policy(build(rngs), compute_dtype)


def frozen(config_section):
  """An immutable copy of a config section, for closures that run while
  tracing (a later change to the run config cannot reach them)."""
  return ml_collections.FrozenConfigDict(config_section)


SCHEDULES = ('constant', 'cosine')


def make_optimizer(config, lr: float | None = None, *, total_steps: int = 0
                   ) -> optax.GradientTransformation:
  """Adam(lr, b1, b2), after global-norm clipping when `grad_clip` > 0.

  `lr` overrides `config.lr` (DMD's fake denoiser may have its own);
  `config.schedule='cosine'` decays it to 0 over `total_steps` updates.
  """
  lr = config.lr if lr is None else lr
  if config.schedule == 'cosine':
    lr = optax.cosine_decay_schedule(lr, max(total_steps, 1))
  adam = optax.adam(lr, b1=config.b1, b2=config.b2)
  if config.grad_clip > 0:
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), adam)
  return adam


def net_state(params, tx, *, ema: bool) -> dict:
  state = {'params': params, 'opt_state': tx.init(params)}
  if ema:
    state['ema'] = params
    state['ema_updates'] = jnp.zeros((), jnp.int32)
  return state


def apply_gradients(state: dict, grads, tx, ema_decay: float = 0.0) -> dict:
  """One optimiser step, then (if kept) ema <- d_t ema + (1 - d_t) params.

  d_t = min(ema_decay, (1 + t) / (10 + t)) after t updates (the warm-up of
  TensorFlow's ExponentialMovingAverage): early on the EMA follows the
  parameters instead of lagging at the initialisation for ~1/(1-d) steps.
  """
  updates, opt_state = tx.update(grads, state['opt_state'], state['params'])
  params = optax.apply_updates(state['params'], updates)
  new = {'params': params, 'opt_state': opt_state}
  if 'ema' in state:
    t = state['ema_updates'].astype(jnp.float32)
    decay = jnp.minimum(ema_decay, (1.0 + t) / (10.0 + t))
    new['ema'] = optax.incremental_update(params, state['ema'], 1.0 - decay)
    new['ema_updates'] = state['ema_updates'] + 1
  return new


def image_network_state(params, tx, image_shape) -> dict:
  """The state of a network trained first (a classifier, an MAE, an
  autoencoder): parameters, optimiser state, and the image shape, which
  travels with the weights so that a loader refuses a network trained for
  other images even where the parameter shapes agree."""
  return dict(net_state(params, tx, ema=False),
              image_shape=jnp.asarray(image_shape, jnp.int32))


def image_network_update(state: dict, grads, tx) -> dict:
  """One optimiser step of `image_network_state`'s state."""
  return dict(apply_gradients(state, grads, tx),
              image_shape=state['image_shape'])


def own_minibatch_key(seed: int, step):
  """The key of step `step`'s minibatch of a network that draws its own
  (from its section's `seed`, not the runner's key or batch)."""
  return jax.random.fold_in(jax.random.key(seed), step)


def eval_params(state: dict):
  """EMA parameters when kept, else the raw ones (used for sampling)."""
  return state.get('ema', state['params'])


def generator_noise(key, n: int, noise_dim: int, mesh):
  """z ~ N(0, I) [n, noise_dim] for the generator update.

  Every method draws it the same way from the step key, so two methods
  started from the same parameters see the same z (the kde-DMD = drifting
  test relies on it). Drawn at global shape: the same on any mesh.
  """
  z = jax.random.normal(jax.random.fold_in(key, 0), (n, noise_dim))
  return parallel.shard_batch(z, mesh)


def sample_generator(gen: Network, state: dict, key, n: int, *,
                     noise_dim: int, num_classes: int = 0,
                     alpha: float = 1.0):
  """x = G(z) [n, D] with the (EMA) parameters; class-major labels and a
  constant CFG scale `alpha` when `num_classes` > 0 (every one-step
  generator samples this way, so evaluations are comparable)."""
  z = jax.random.normal(key, (n, noise_dim))
  cond = {}
  if num_classes:
    cond = dict(labels=data_lib.class_major_labels(n, num_classes),
                alpha=jnp.full((n,), alpha))
  return gen.apply(eval_params(state), z, **cond)


def micro_split(a, microbatches: int, axis: int = 0):
  """[..., N, ...] -> [M, ..., N / M, ...] along `axis`: micro-batch m holds
  rows m, m + M, m + 2M, ..., so each stays spread over the devices that
  hold the batch's contiguous blocks (when N is a multiple of M x their
  count)."""
  shape = a.shape
  a = a.reshape(shape[:axis] + (shape[axis] // microbatches, microbatches)
                + shape[axis + 1:])
  return jnp.moveaxis(a, axis + 1, 0)


def accumulated_value_and_grad(loss_fn, params, inputs, microbatches: int,
                               has_aux: bool = False):
  """`jax.value_and_grad(loss_fn, has_aux)(params, *inputs)` for a loss
  (and metrics) that is a mean over the samples of `inputs` (pytrees of
  arrays with their sample axis first), over `microbatches` equal
  micro-batches (`lax.scan`, one micro-batch's activations alive at a
  time): the mean of the micro-batches' values and gradients, which is the
  full batch's. A loss with global statistics needs two passes instead
  (`drifting.two_pass_loss_and_grads`)."""
  if microbatches == 1:
    return jax.value_and_grad(loss_fn, has_aux=has_aux)(params, *inputs)
  total = summed_value_and_grad(loss_fn, params, jax.tree.map(
      lambda a: micro_split(a, microbatches), tuple(inputs)), has_aux)
  return jax.tree.map(lambda t: t / microbatches, total)


def summed_value_and_grad(loss_fn, params, micro_inputs,
                          has_aux: bool = False):
  """The sums over micro-batches of `loss_fn(params, *inputs_m)` (and its
  metrics, with `has_aux`) and of its gradient, `micro_inputs` stacked on
  a leading micro-batch axis (`lax.scan`: one micro-batch's activations
  alive at a time)."""
  value_and_grad = jax.value_and_grad(loss_fn, has_aux=has_aux)

  def accumulate(total, inputs):
    return jax.tree.map(jnp.add, total, value_and_grad(params, *inputs)), None

  first = jax.tree.map(lambda a: a[0], micro_inputs)
  zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype),
                       jax.eval_shape(value_and_grad, params, *first))
  return lax.scan(accumulate, zeros, micro_inputs)[0]


def split_batch(batch):
  """(points [B, D], labels [B] or None) of an unlabelled array batch or a
  class-balanced {'x', 'labels'} batch (`data.make_batch_fn`)."""
  if isinstance(batch, dict):
    return batch['x'], batch['labels']
  return batch, None


def validate_shared(config) -> None:
  """Checks of the shared keys whose choices the methods' code defines."""
  config_lib.check_choice('optim.schedule', config.optim.schedule, SCHEDULES)
  models.check_generator_config(config.model.generator)
  models.check_denoiser_config(config.model.denoiser)
  precision.validate(config)


def pretraining_run_config(config, method_name: str, section: str,
                           seed: int, schema) -> ml_collections.ConfigDict:
  """The run of a network a student of `config` trains first (a feature
  encoder, an evaluation network): method `method_name` with its section
  `section` of `config` (its `steps`, `batch_size`, and `seed` set here).

  Built from the defaults (`schema`, `methods.base_config()`), not from a
  copy of the student's config, so that it depends only on what the
  network depends on: the data, its split and evaluation sets, the seed of
  the split and its own section. A resumed student whose own sections
  changed therefore reuses its finished networks.
  """
  c = ml_collections.ConfigDict(schema.to_dict())
  c.method = method_name
  c.seed = config.seed
  # Over the schema's defaults: a config from before a data key existed
  # (a stored student's) gets its default.
  c.data.update(config.data.to_dict())
  # These steps draw their own minibatches (the runner's batch is unused),
  # so the student's `data.draw` means nothing here, and its per-class
  # streaming bank would refuse an unconditional run.
  c.data.draw = schema.data.draw
  for key in ('num_samples', 'seed', 'split'):
    if key in config.eval:
      c.eval[key] = config.eval[key]
  c.eval.update(classifier='none', plot=False)
  c[section] = config[section].to_dict()
  c[section].seed = seed
  steps = config[section].steps
  c.train.update(
      steps=steps, batch_size=config[section].batch_size,
      gen_batch_size=config[section].batch_size, steps_per_call=1,
      ema_decay=0.0, eval_every=steps, progress=False, keep_checkpoints=1,
      log_every=min(config.train.log_every, steps),
      checkpoint_every=min(config.train.checkpoint_every, steps),
      divergence_factor=config.train.divergence_factor)
  # One device, as classifiers were always trained: the step is not split
  # over devices (it draws its own minibatch), so more would add nothing,
  # and XLA rounds the same step replicated on 8 devices differently. A
  # multi-process run must use every device (`parallel.make_mesh`).
  c.mesh.num_devices = 1 if jax.process_count() == 1 else -1
  if c.mesh.num_devices == 1:
    c.mesh.fsdp = 1
  return c


def check_no_feature_space(config, method_name: str) -> None:
  """Feature-space losses are drifting's; other methods refuse them."""
  if config.features.encoder != 'none':
    raise ValueError(f"`features.encoder` applies to method='drifting' "
                     f'only, got method={method_name!r}.')


def loop_unroll(image_shape) -> bool:
  """Whether to unroll a method's inner loops (DMD's fake updates, the
  Heun sampler): yes for image networks, whose convolutions XLA:CPU runs
  ~25x slower inside a while loop than outside one (measured: the digits
  generator's training step, 3.9 s in a length-1 scan vs 0.15 s without),
  and on accelerators, where a device loop costs a round trip to the host
  per iteration. MLP runs on a CPU keep the loop, which is as fast there
  and leaves their compiled arithmetic as it was.
  """
  return image_shape is not None or jax.default_backend() != 'cpu'
