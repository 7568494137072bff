"""Autoencoder training as a method: the latent space of latent-space runs
(`latent.autoencoder`), trained here by the runner.

An `autoencoder` run trains `models.autoencoder.ConvAutoencoder` on a
run's training images to minimise the mean squared reconstruction error,
Adam with a cosine decay of `autoencoder.lr` to 0. Like the MAE
(`methods/mae.py`) it draws its own minibatches on the device from
(`autoencoder.seed`, step), trains on one device and evaluates without
generating: the held-out round-trip error (`eval/round_trip_mse`, and its
PSNR for images in [-1, 1]). `drift_jax.encoders.latent` loads a finished
run as the frozen encoder and decoder of a latent-space run.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from drift_jax.config import config_lib
from drift_jax.methods import common
from drift_jax.methods.context import RunContext
from drift_jax.models.autoencoder import ConvAutoencoder

NAME = 'autoencoder'
CONFIG = {
    'autoencoder': dict(channels=(32, 64), latent_channels=4, steps=2000,
                        batch_size=128, lr=2e-3, seed=0),
}
SMOKE = {'autoencoder': dict(channels=(8, 16), steps=20, batch_size=16)}
LATENT_SEED = 0xAE  # the latent space's copy
MSE = 'eval/round_trip_mse'
PSNR = 'eval/round_trip_psnr'


def validate(config) -> None:
  """Start-up checks of the `autoencoder` section."""
  common.check_no_feature_space(config, NAME)
  a = config.autoencoder
  config_lib.check_at_least_one('autoencoder', a,
                                ('steps', 'batch_size', 'latent_channels'))
  if not a.channels or min(a.channels) < 1:
    raise ValueError('`autoencoder.channels` must list >= 1 positive '
                     f'width, got {tuple(a.channels)}.')
  if not a.lr > 0:
    raise ValueError(f'`autoencoder.lr` must be > 0, got {a.lr}.')


def prerequisites(config) -> dict:
  del config
  return {}


# Methods that train in a latent space (`latent.autoencoder`).
LATENT_METHODS = ('drifting', 'diffusion', 'dmd')


def validate_latent(config) -> None:
  """Start-up checks of `latent.autoencoder` (ValueError naming it):
  'none', 'train', a directory or 'python:FILE', for a generating method
  on pixels (a feature encoder reads pixels, not latents)."""
  choice = config.get('latent', {}).get('autoencoder', 'none')
  if choice == 'none':
    return
  if config.method not in LATENT_METHODS:
    raise ValueError(f'`latent.autoencoder` applies to methods '
                     f'{LATENT_METHODS}; method={config.method!r} trains '
                     "on pixels: set latent.autoencoder='none'.")
  if config.features.encoder != 'none':
    raise ValueError('`latent.autoencoder` and `features.encoder` cannot '
                     'be combined yet: the feature encoder reads pixels.')
  if choice.startswith('python:'):
    return
  config_lib.check_prerequisite('latent.autoencoder', choice,
                                extra=('none', 'python:FILE'))


def run_config(config, seed: int, schema) -> ml_collections.ConfigDict:
  """The autoencoder run a latent-space run of `config` trains first."""
  return common.pretraining_run_config(config, NAME, 'autoencoder', seed,
                                       schema)


@dataclasses.dataclass(frozen=True)
class AutoencoderSpec:
  image_shape: tuple
  channels: tuple
  latent_channels: int
  seed: int
  batch_size: int
  tx: optax.GradientTransformation
  graphdef: object


def build(spec_or_section, image_shape, seed=0) -> ConvAutoencoder:
  return ConvAutoencoder(tuple(image_shape),
                         channels=tuple(spec_or_section.channels),
                         latent_channels=spec_or_section.latent_channels,
                         rngs=nnx.Rngs(seed))


def make_spec(section, image_shape) -> AutoencoderSpec:
  return AutoencoderSpec(
      image_shape=tuple(image_shape), channels=tuple(section.channels),
      latent_channels=int(section.latent_channels), seed=section.seed,
      batch_size=section.batch_size,
      tx=optax.adam(optax.cosine_decay_schedule(section.lr, section.steps)),
      graphdef=nnx.split(nnx.eval_shape(
          lambda: build(section, image_shape)))[0])


def make(config, ctx: RunContext) -> common.Method:
  data = ctx.data
  if data is None or data.image_shape is None:
    raise ValueError(f'method={NAME!r} needs image data; data '
                     f'{config.data.name!r} has none.')
  spec = make_spec(config.autoencoder, data.image_shape)
  constants = {'images': jnp.asarray(data.train),
               'held_out': jnp.asarray(data.held_out)}
  return common.Method(functools.partial(init, spec),
                       functools.partial(train_step, spec), None, constants,
                       evaluate=functools.partial(evaluate, spec))


def init(spec: AutoencoderSpec, key):
  """Parameters from `autoencoder.seed` and Adam's state; the image shape
  travels with them."""
  del key
  _, params = nnx.split(build(spec, spec.image_shape, spec.seed))
  return common.image_network_state(params, spec.tx, spec.image_shape)


def abstract_state(spec: AutoencoderSpec):
  return jax.eval_shape(lambda: init(spec, None))


def round_trip_mse(spec: AutoencoderSpec, params, images):
  return jnp.mean((nnx.merge(spec.graphdef, params)(images) - images)**2)


def train_step(spec: AutoencoderSpec, state, constants, batch, key, step=0):
  """One Adam step on a minibatch from (`autoencoder.seed`, step)."""
  del batch, key
  pick = common.own_minibatch_key(spec.seed, step)
  idx = jax.random.randint(pick, (spec.batch_size,), 0,
                           constants['images'].shape[0])
  loss, grads = jax.value_and_grad(functools.partial(round_trip_mse, spec))(
      state['params'], constants['images'][idx])
  return (common.image_network_update(state, grads, spec.tx),
          {'train/loss': loss})


def evaluate(spec: AutoencoderSpec, state, constants) -> dict:
  """Held-out round-trip MSE, and its PSNR for pixels in [-1, 1] (peak
  to peak 2)."""
  mse = float(jax.jit(functools.partial(round_trip_mse, spec))(
      state['params'], constants['held_out']))
  return {MSE: mse, PSNR: 10 * math.log10(4.0 / max(mse, 1e-12))}
