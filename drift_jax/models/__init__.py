"""Flax NNX networks: generators and denoisers, one registry line each.

'mlp' networks work on any [N, D] data; 'conv' (generator), 'unet'
(denoiser) and 'dit' (both) need images (`image_shape`) and take class
labels when `num_classes` > 0 (class-conditional runs).

One calling convention for all of them: a generator is
`gen(z, labels=None, alpha=None)` and a denoiser `den(x, sigma,
labels=None)` (EDM-preconditioned, `models.edm`); unconditional networks
refuse labels.

A network is a module with a `models.network.Network` entry per role
(its keys in the role's section, smoke sizes, needs, checks, `build`) and
one line in `GENERATORS` or `DENOISERS` below; `config_sections()` (the
`model` section) is composed from the entries.
"""

from __future__ import annotations

from flax import nnx

from drift_jax.models import adm
from drift_jax.models import conv
from drift_jax.models import dit
from drift_jax.models import mlp
from drift_jax.models.conv import ConvGenerator
from drift_jax.models.conv import UNetDenoiser
from drift_jax.models.mlp import INITS
from drift_jax.models.mlp import MLP
from drift_jax.models.mlp import EDMDenoiser
from drift_jax.models.mlp import MLPGenerator
from drift_jax.models.network import Network
from drift_jax.theory import validation

GENERATORS: dict[str, Network] = {
    'mlp': mlp.GENERATOR,
    'conv': conv.GENERATOR,
    'dit': dit.GENERATOR,
}
DENOISERS: dict[str, Network] = {
    'mlp': mlp.DENOISER,
    'unet': conv.DENOISER,
    'adm': adm.DENOISER,
    'dit': dit.DENOISER,
}
# Keys of a role's section that every network of the role reads.
ROLES = {'generator': (GENERATORS, dict(name='mlp', noise_dim=32)),
         'denoiser': (DENOISERS, dict(name='mlp'))}
ROLE_SMOKE = {'generator': dict(noise_dim=8), 'denoiser': {}}


def _section(role: str) -> dict:
  """A role's section: its own keys, then each network's (in registry
  order); a key two networks share must have one default."""
  registry, own = ROLES[role]
  section = dict(own)
  for name, network in registry.items():
    for key, value in network.config.items():
      if key in section and section[key] != value:
        raise ValueError(f'model.{role}.{key}: network {name!r} declares '
                         f'default {value!r}, another {section[key]!r}.')
      section[key] = value
  return section


def config_sections() -> dict:
  """{'model': {role: section}} of the registered networks (composed when
  asked, so a network registered later, e.g. by a test, is included)."""
  return {'model': {role: _section(role) for role in ROLES}}


def smoke(model_section) -> None:
  """`runlocal`'s sizes for every registered network, in place."""
  for role, (registry, _) in ROLES.items():
    section = model_section[role]
    section.update(ROLE_SMOKE[role])
    for network in registry.values():
      section.update(dict(network.smoke))


def _entry(role: str, name: str, image_shape, num_classes) -> Network:
  registry = ROLES[role][0]
  key = f'model.{role}.name'
  validation.check_known_name(key, name, tuple(registry))
  network = registry[name]
  if network.images and image_shape is None:
    raise ValueError(f'`{key}={name!r}` needs image data (an image '
                     'dataset such as data.name=digits).')
  if num_classes and not network.conditional:
    conditional = tuple(n for n, e in registry.items() if e.conditional)
    raise ValueError(f'Class-conditional runs need a conditional network; '
                     f'`{key}={name!r}` takes no labels (use '
                     f'{conditional}).')
  return network


def check_generator_config(config) -> None:
  """Start-up checks of `model.generator` (ValueError naming the key)."""
  validation.check_known_name('model.generator.name', config.name,
                              tuple(GENERATORS))
  GENERATORS[config.name].validate(config)


def check_denoiser_config(config) -> None:
  """Start-up checks of `model.denoiser` (ValueError naming the key)."""
  validation.check_known_name('model.denoiser.name', config.name,
                              tuple(DENOISERS))
  DENOISERS[config.name].validate(config)


def make_generator(config, dim: int, rngs: nnx.Rngs, *, image_shape=None,
                   num_classes: int = 0):
  """The generator `config.name` names (config: model.generator)."""
  network = _entry('generator', config.name, image_shape, num_classes)
  return network.build(config, dim=dim, image_shape=image_shape,
                       num_classes=num_classes, rngs=rngs)


def make_denoiser(config, dim: int, rngs: nnx.Rngs, sigma_data: float, *,
                  image_shape=None, num_classes: int = 0):
  """The denoiser `config.name` names (config: model.denoiser)."""
  network = _entry('denoiser', config.name, image_shape, num_classes)
  return network.build(config, dim=dim, image_shape=image_shape,
                       num_classes=num_classes, rngs=rngs,
                       sigma_data=sigma_data)


__all__ = ['ConvGenerator', 'DENOISERS', 'EDMDenoiser',
           'GENERATORS', 'INITS', 'MLP', 'MLPGenerator', 'Network',
           'UNetDenoiser', 'config_sections', 'make_denoiser', 'make_generator',
           'smoke']
