"""Flax NNX networks: generators and denoisers, chosen by config name.

'mlp' networks work on any [N, D] data; 'conv' (generator) and 'unet'
(denoiser) need images (`image_shape`) and take class labels when
`num_classes` > 0 (class-conditional runs).

One calling convention for all of them: a generator is
`gen(z, labels=None, alpha=None)` and a denoiser `den(x, sigma,
labels=None)` (EDM-preconditioned, `models.edm`); unconditional networks
refuse labels.
"""

from flax import nnx

from drift_jax import validation
from drift_jax.models.conv import ConvGenerator
from drift_jax.models.conv import UNetDenoiser
from drift_jax.models.mlp import INITS
from drift_jax.models.mlp import MLP
from drift_jax.models.mlp import EDMDenoiser
from drift_jax.models.mlp import MLPGenerator

GENERATORS = {'mlp': MLPGenerator, 'conv': ConvGenerator}
DENOISERS = {'mlp': EDMDenoiser, 'unet': UNetDenoiser}
IMAGE_NETWORKS = ('conv', 'unet')


def _check_image_net(name, config_name, image_shape, num_classes):
  if name in IMAGE_NETWORKS and image_shape is None:
    raise ValueError(f'`{config_name}={name!r}` needs image data (an image '
                     'dataset such as data.name=digits).')
  if num_classes and name not in IMAGE_NETWORKS:
    raise ValueError(f'Class-conditional runs need a conditional network; '
                     f'`{config_name}={name!r}` takes no labels (use '
                     f'{IMAGE_NETWORKS}).')


def check_generator_config(config) -> None:
  """Start-up checks of `model.generator` (ValueError naming the key)."""
  validation.check_choice('model.generator.name', config.name,
                          tuple(GENERATORS))
  validation.check_choice('model.generator.init', config.init, INITS)


def make_generator(config, dim: int, rngs: nnx.Rngs, *, image_shape=None,
                   num_classes: int = 0):
  """The generator `config.name` names (config: model.generator)."""
  validation.check_choice('model.generator.name', config.name,
                          tuple(GENERATORS))
  _check_image_net(config.name, 'model.generator.name', image_shape,
                   num_classes)
  if config.name == 'conv':
    return ConvGenerator(config.noise_dim, image_shape,
                         channels=tuple(config.channels),
                         num_classes=num_classes, rngs=rngs)
  return MLPGenerator(config.noise_dim, dim, width=config.width,
                      depth=config.depth, rngs=rngs, init=config.init,
                      init_offset=tuple(config.init_offset),
                      init_scale=config.init_scale)


def make_denoiser(config, dim: int, rngs: nnx.Rngs, sigma_data: float, *,
                  image_shape=None, num_classes: int = 0):
  """The denoiser `config.name` names (config: model.denoiser)."""
  validation.check_choice('model.denoiser.name', config.name,
                          tuple(DENOISERS))
  _check_image_net(config.name, 'model.denoiser.name', image_shape,
                   num_classes)
  if config.name == 'unet':
    return UNetDenoiser(image_shape, channels=tuple(config.channels),
                        num_classes=num_classes, sigma_data=sigma_data,
                        rngs=rngs)
  return EDMDenoiser(dim, width=config.width, depth=config.depth,
                     sigma_data=sigma_data, rngs=rngs)


__all__ = ['ConvGenerator', 'DENOISERS', 'EDMDenoiser', 'GENERATORS', 'MLP',
           'MLPGenerator', 'UNetDenoiser', 'make_denoiser', 'make_generator']
