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

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax import models
from drift_jax.data import datasets as data_lib
from drift_jax.methods import common
from drift_jax.methods.context import RunContext
from drift_jax.models import precision
from drift_jax.parallel import sharding as parallel
from drift_jax.theory import losses
from drift_jax.theory import noise as noise_lib

NAME = 'diffusion'
# `train.microbatches` > 1 splits the data batch (plain accumulation).
MICROBATCHES = 'batch_size'
CONFIG = {
    'diffusion': dict(sigma_min=0.002, sigma_max=80.0, rho=7.0,
                      sigma_data=0.5, p_mean=-1.2, p_std=1.2,
                      sample_steps=18),
}
SMOKE = {'diffusion': dict(sample_steps=4)}


def toy_noise_range(c) -> None:
  """sigma_max = 5 instead of EDM's 80 for the EDM teacher and DMD on toy
  data: the data have unit scale, and with 80 half of the Karras grid lies
  above sigma = 2.5, where the smoothed densities carry almost no signal
  (the grid rescaled to the data's scale)."""
  c.diffusion.sigma_max = 5.0


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
  """The config's `model.denoiser`, EDM-preconditioned, as a Network."""
  den_config = common.frozen(config.model.denoiser)
  sigma_data = config.diffusion.sigma_data
  return common.Network.create(lambda rngs: models.make_denoiser(
      den_config, dim, rngs, sigma_data, image_shape=image_shape,
      num_classes=num_classes), precision.compute_dtype(config))


def validate(config) -> None:
  """Start-up checks of the `diffusion` section."""
  common.check_no_feature_space(config, NAME)
  d = config.diffusion
  if not 0 < d.sigma_min < d.sigma_max:
    raise ValueError(f'Need 0 < diffusion.sigma_min < diffusion.sigma_max, '
                     f'got {d.sigma_min}, {d.sigma_max}.')
  if d.sample_steps < 1:
    raise ValueError(f'`diffusion.sample_steps` must be >= 1, got '
                     f'{d.sample_steps}.')


def prerequisites(config) -> dict:
  """A diffusion model needs nothing trained before it."""
  del config
  return {}


@dataclasses.dataclass(frozen=True)
class DiffusionSpec:
  """Everything a diffusion step needs, built once by `make`."""
  den: common.Network
  tx: Any
  mesh: Any
  p_mean: float
  p_std: float
  sigma_data: float
  ema_decay: float
  sample_sigmas: Any  # [S] decreasing Heun levels
  dim: int
  num_classes: int
  unroll: bool
  sample_chunk: int  # rows per Heun call; 0: all at once
  microbatches: int = 1  # train.microbatches (plain accumulation)


def make(config, ctx: RunContext) -> common.Method:
  """Diffusion method from the run config (model.denoiser, optim,
  diffusion, train.ema_decay); class-conditional D(x, sigma, label) when
  `ctx.num_classes` > 0 (batches from `data.make_batch_fn(class_balanced)`).
  """
  cfg = config.diffusion
  spec = DiffusionSpec(
      den=make_denoiser_net(config, ctx.dim, image_shape=ctx.image_shape,
                            num_classes=ctx.num_classes),
      tx=common.make_optimizer(config.optim, total_steps=config.train.steps),
      mesh=ctx.mesh, p_mean=cfg.p_mean, p_std=cfg.p_std,
      sigma_data=cfg.sigma_data, ema_decay=config.train.ema_decay,
      sample_sigmas=sampling_sigmas(cfg), dim=ctx.dim,
      num_classes=ctx.num_classes,
      unroll=common.loop_unroll(ctx.image_shape),
      sample_chunk=config.eval.sample_chunk,
      microbatches=int(config.train.get('microbatches', 1)))
  return common.Method(functools.partial(init, spec),
                       functools.partial(train_step, spec),
                       functools.partial(sample, spec))


def init(spec: DiffusionSpec, key):
  return {'denoiser': common.net_state(spec.den.init(key), spec.tx,
                                       ema=spec.ema_decay > 0)}


def train_step(spec: DiffusionSpec, state, constants, batch, key, step=0):
  """EDM denoising score matching on the batch (its labels, if any)."""
  del constants, step
  batch, labels = common.split_batch(batch)
  k_sigma, k_eps = jax.random.split(key)
  n = batch.shape[0]
  sigma = jnp.exp(spec.p_mean
                  + spec.p_std * jax.random.normal(k_sigma, (n,)))
  eps = parallel.shard_batch(jax.random.normal(k_eps, batch.shape),
                             spec.mesh)
  x_t = batch + sigma[:, None] * eps

  def loss_fn(params, x_t, sigma, batch, labels):
    return losses.denoising_loss(
        spec.den.apply(params, x_t, sigma, labels=labels), batch, sigma,
        spec.sigma_data)

  # A mean over independent samples: plain accumulation is exact (labels
  # None is an empty pytree, split into nothing).
  loss, grads = common.accumulated_value_and_grad(
      loss_fn, state['denoiser']['params'], (x_t, sigma, batch, labels),
      spec.microbatches)
  new = common.apply_gradients(state['denoiser'], grads, spec.tx,
                               spec.ema_decay)
  return {'denoiser': new}, {'train/loss': loss}


def sample(spec: DiffusionSpec, state, constants, key, n):
  """Heun samples of the (EMA) denoiser, class-major labels if any."""
  del constants
  params = common.eval_params(state['denoiser'])
  x_init = spec.sample_sigmas[0] * jax.random.normal(key, (n, spec.dim))
  labels = (data_lib.class_major_labels(n, spec.num_classes)
            if spec.num_classes else None)
  return chunked_heun_sample(
      lambda rows: functools.partial(
          _denoise, spec, params,
          labels[rows] if labels is not None else None),
      x_init, spec.sample_sigmas, chunk=spec.sample_chunk,
      unroll=spec.unroll)


def chunked_heun_sample(denoiser_for, x_init, sigmas, *, chunk: int,
                        unroll: bool):
  """`heun_sample` on `chunk` rows at a time (0: all at once), one chunk
  after the other, with the noise of one call: the same samples, with one
  chunk's unrolled solver in memory. `denoiser_for(rows)`: the denoiser of
  the rows in slice `rows` (their labels)."""
  n = x_init.shape[0]
  chunk = chunk or n
  chunks = []
  for start in range(0, n, chunk):
    rows = slice(start, start + chunk)
    x = x_init[rows]
    if chunks:
      # This chunk's solver starts once the last one's has finished, so
      # XLA holds one chunk's unrolled solver at a time (the solver is
      # row-wise: the noise and the samples are those of one call).
      chunks[-1], x = lax.optimization_barrier((chunks[-1], x))
    chunks.append(heun_sample(denoiser_for(rows), x, sigmas, unroll=unroll))
  return chunks[0] if len(chunks) == 1 else jnp.concatenate(chunks)


def _denoise(spec, params, labels, x, sigma):
  return spec.den.apply(params, x, sigma, labels=labels)
