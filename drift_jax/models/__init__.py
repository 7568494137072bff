"""Flax NNX networks: generators and denoisers, chosen by config name."""

from flax import nnx

from drift_jax import validation
from drift_jax.models.mlp import MLP
from drift_jax.models.mlp import EDMDenoiser
from drift_jax.models.mlp import MLPGenerator

GENERATORS = {'mlp': MLPGenerator}
DENOISERS = {'mlp': EDMDenoiser}


def make_generator(config, dim: int, rngs: nnx.Rngs):
  """The generator `config.name` names (config: model.generator)."""
  validation.check_choice('model.generator.name', config.name,
                          tuple(GENERATORS))
  return GENERATORS[config.name](config.noise_dim, dim, width=config.width,
                                 depth=config.depth, rngs=rngs,
                                 init=config.init,
                                 init_offset=tuple(config.init_offset),
                                 init_scale=config.init_scale)


def make_denoiser(config, dim: int, rngs: nnx.Rngs, sigma_data: float):
  """The denoiser `config.name` names (config: model.denoiser)."""
  validation.check_choice('model.denoiser.name', config.name,
                          tuple(DENOISERS))
  return DENOISERS[config.name](dim, width=config.width, depth=config.depth,
                                sigma_data=sigma_data, rngs=rngs)


__all__ = ['DENOISERS', 'EDMDenoiser', 'GENERATORS', 'MLP', 'MLPGenerator',
           'make_denoiser', 'make_generator']
