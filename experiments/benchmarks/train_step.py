"""Chained training steps, ours and the authors', measured the same way.

`ours` chains the runner's own step (`runner.make_step_fn` on a state from
`runner.init_state`): state donated, replicated outputs, one batch
[1, B, D] and the step number per call, as in the runner's loop.
`authors` chains the same generator, optimiser and loss around the
authors' dense field (`baseline.compute_v`). Both are warmed with two calls
(the second call is where a mis-sharded state would compile again) and
timed over `n` chained calls ending in one `block_until_ready`.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from drift_jax import fields
from drift_jax import methods
from drift_jax import models
from drift_jax.config import config_lib
from drift_jax.methods import common
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from drift_jax.theory import losses
from drift_jax.train import runner
from experiments.benchmarks import baseline


def toy_config(n: int, temps=(0.05,), normalize=False):
  """The demo recipe at batch n / n, with the given field."""
  c = methods.finalize(config_lib.load_config_file('configs/toy2d.py:recipe'))
  c.train.update(batch_size=n, gen_batch_size=n)
  c.field.update(temperatures=tuple(temps), normalize_distances=normalize,
                 normalize_drift=normalize)
  return c


def ours(config, batch):
  """(step(carry) -> carry, carry): the runner's chained step."""
  mesh = parallel.make_mesh(1)
  method = methods.get('drifting').make(config, RunContext(dim=2, mesh=mesh))
  step_fn = runner.make_step_fn(method, mesh, config.seed)
  constants = jax.device_put(method.constants, parallel.replicated(mesh))
  batches = batch[None]

  def step(carry):
    state, i = carry
    state, _ = step_fn(state, constants, batches, i)
    return state, i + 1
  return step, (runner.init_state(method, mesh, config.seed),
                jnp.zeros((), jnp.int32))


def authors(config, batch):
  """(step(carry) -> carry, carry): the same generator, optimiser and loss
  with the authors' dense field (their Alg. 2 and App. A.6)."""
  gen = common.Network.create(
      lambda rngs: models.make_generator(config.model.generator, 2, rngs))
  tx = common.make_optimizer(config.optim, total_steps=config.train.steps)
  params = gen.init(jax.random.key(0))
  n, noise_dim = config.train.gen_batch_size, config.model.generator.noise_dim
  temps = fields.FieldSpec.from_config(config.field).temperatures
  normalize = config.field.normalize_drift

  def base_step(params, opt, i):
    z = jax.random.normal(jax.random.fold_in(jax.random.key(1), i),
                          (n, noise_dim))

    def loss_fn(p):
      x = gen.apply(p, z)
      v, scale = baseline.compute_v(x, batch, x, temps, normalize)
      return losses.drift_loss(x, v * scale)
    grads = jax.grad(loss_fn)(params)
    updates, opt = tx.update(grads, opt, params)
    return jax.tree.map(jnp.add, params, updates), opt, i + 1

  step = jax.jit(base_step, donate_argnums=(0, 1))
  return (lambda carry: step(*carry)), (params, tx.init(params),
                                        jnp.zeros((), jnp.int32))


def steps_per_second(step, carry, n: int) -> float:
  """Chained calls per second after two warm-up calls."""
  for _ in range(2):
    carry = step(carry)
  jax.block_until_ready(carry)
  start = time.perf_counter()
  for _ in range(n):
    carry = step(carry)
  jax.block_until_ready(carry)
  return n / (time.perf_counter() - start)
