"""EDM diffusion model: the DMD teacher, trained and sampled here.

Training is denoising score matching in the EDM parameterisation (Karras et
al. 2022): sigma ~ exp(N(p_mean, p_std^2)) (EDM's training distribution),
x_t = x + sigma eps, loss = lambda(sigma) |D(x_t, sigma) - x|^2 with
lambda = 1/sigma^2 + 1/sigma_data^2 (EDM Eq. 2, Table 1). Sampling is the
deterministic Heun solver of the probability-flow ODE (EDM Alg. 1 with
S_churn = 0), so the teacher's own sample quality is measured by the same
evaluation as the one-step generators.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax import losses
from drift_jax import models
from drift_jax import noise as noise_lib
from drift_jax import parallel
from drift_jax.methods import common


def heun_sample(denoiser, x_init, sigmas, *, unroll: bool = False):
  """EDM Alg. 1 (deterministic): integrate dx/dsigma = (x - D(x, s)) / s.

  Args:
    denoiser: (x [N, D], sigma [N]) -> [N, D].
    x_init: [N, D] starting points, sigmas[0] * standard normal.
    sigmas: [S] decreasing noise levels, sigmas[0] = sigma_max; the solver
      ends at sigma = 0 with a final Euler step.
    unroll: unroll the solver loop (image networks: XLA:CPU runs
      convolutions inside a loop many times slower, see `loop_unroll`).

  Returns:
    [N, D] samples.
  """
  levels = jnp.concatenate([sigmas, jnp.zeros((1,), sigmas.dtype)])
  n = x_init.shape[0]

  def slope(x, s):
    return (x - denoiser(x, jnp.full((n,), s))) / s

  def step(x, pair):
    s, s_next = pair
    d = slope(x, s)
    x_euler = x + (s_next - s) * d
    # Heun's correction, except on the last step to sigma = 0.
    x_heun = x + (s_next - s) * 0.5 * (
        d + slope(x_euler, jnp.maximum(s_next, 1e-12)))
    return jnp.where(s_next > 0, x_heun, x_euler), None

  x, _ = lax.scan(step, x_init, (levels[:-1], levels[1:]), unroll=unroll)
  return x


def sampling_sigmas(diffusion_config):
  """Decreasing Karras levels for the Heun sampler (EDM Eq. 5)."""
  return jnp.flip(noise_lib.karras_sigmas(
      diffusion_config.sample_steps, diffusion_config.sigma_min,
      diffusion_config.sigma_max, diffusion_config.rho))


def make_denoiser_net(config, dim, *, image_shape=None, num_classes=0):
  return common.Network.create(lambda rngs: models.make_denoiser(
      config.model.denoiser, dim, rngs, config.diffusion.sigma_data,
      image_shape=image_shape, num_classes=num_classes))


def make(config, *, dim: int, mesh, teacher=None, image_shape=None,
         num_classes: int = 0, encoder=None) -> common.Method:
  """Diffusion method from the run config (model.denoiser, optim,
  diffusion, train.ema_decay); class-conditional D(x, sigma, label) when
  `num_classes` > 0 (batches from `data.make_batch_fn(class_balanced)`)."""
  del teacher, encoder
  den = make_denoiser_net(config, dim, image_shape=image_shape,
                          num_classes=num_classes)
  cfg = config.diffusion
  tx = common.make_optimizer(config.optim,
                                total_steps=config.train.steps)
  ema_decay = config.train.ema_decay
  sample_sigmas = sampling_sigmas(cfg)

  def init(key):
    return {'denoiser': common.net_state(den.init(key), tx,
                                         ema=ema_decay > 0)}

  def train_step(state, constants, batch, key):
    del constants
    batch, labels = common.split_batch(batch)
    extra = common.cond_args(labels)
    k_sigma, k_eps = jax.random.split(key)
    n = batch.shape[0]
    sigma = jnp.exp(cfg.p_mean + cfg.p_std * jax.random.normal(k_sigma, (n,)))
    eps = parallel.shard_batch(jax.random.normal(k_eps, batch.shape), mesh)
    x_t = batch + sigma[:, None] * eps

    def loss_fn(params):
      return losses.denoising_loss(den.apply(params, x_t, sigma, *extra),
                                   batch, sigma, cfg.sigma_data)

    loss, grads = jax.value_and_grad(loss_fn)(state['denoiser']['params'])
    new = common.apply_gradients(state['denoiser'], grads, tx, ema_decay)
    return {'denoiser': new}, {'train/loss': loss}

  def sample(state, constants, key, n):
    del constants
    params = common.eval_params(state['denoiser'])
    x_init = sample_sigmas[0] * jax.random.normal(key, (n, dim))
    extra = common.cond_args(common.class_major_labels(n, num_classes)
                             if num_classes else None)
    return heun_sample(lambda x, s: den.apply(params, x, s, *extra), x_init,
                       sample_sigmas, unroll=common.loop_unroll(image_shape))

  return common.Method(init, train_step, sample)
