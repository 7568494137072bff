"""A test-only method, the smallest real one: the generator follows
V(x) = s (mean(data) - mean(x)), the same shift for every sample, so its
samples' mean moves onto the data's mean (and nothing else is matched).

It shows what adding a method takes: this module plus one registry line
(`methods.METHODS['mean_matching'] = mean_matching_method`); the runner,
config schema, validation, evaluation and checkpoints need no change.
"""


import jax
import jax.numpy as jnp

from drift_jax import models
from drift_jax.methods import common
from drift_jax.parallel import sharding as parallel
from drift_jax.theory import losses

NAME = 'mean_matching'
CONFIG = {'mean_matching': dict(step_scale=1.0)}


def validate(config):
  if not config.mean_matching.step_scale > 0:
    raise ValueError('`mean_matching.step_scale` must be > 0, got '
                     f'{config.mean_matching.step_scale}.')


def prerequisites(config):
  del config
  return {}


def make(config, ctx):
  gen = common.Network.create(lambda rngs: models.make_generator(
      config.model.generator, ctx.dim, rngs))
  tx = common.make_optimizer(config.optim, total_steps=config.train.steps)
  noise_dim = config.model.generator.noise_dim
  scale = config.mean_matching.step_scale

  def init(key):
    return {'gen': common.net_state(gen.init(key), tx, ema=False)}

  def train_step(state, constants, batch, key, step=0):
    del constants, step
    z = common.generator_noise(key, config.train.gen_batch_size, noise_dim,
                               ctx.mesh)

    def loss_fn(params):
      x = gen.apply(params, z)
      data = parallel.gather_global(batch, ctx.mesh)
      shift = scale * (jnp.mean(data, 0) - jnp.mean(x, 0))
      return losses.drift_loss(x, jnp.broadcast_to(shift, x.shape))

    loss, grads = jax.value_and_grad(loss_fn)(state['gen']['params'])
    return ({'gen': common.apply_gradients(state['gen'], grads, tx)},
            {'train/loss': loss})

  def sample(state, constants, key, n):
    del constants
    return gen.apply(state['gen']['params'],
                     jax.random.normal(key, (n, noise_dim)))

  return common.Method(init, train_step, sample)
