"""The method registry: one line per method.

A method is a module that provides
  CONFIG: {section: defaults} for the config sections it owns;
  RENAMED (optional): {old dotted key: new} for keys it has moved;
  SMOKE (optional): {section: {key: value}} of its `runlocal` sizes;
  validate(config): raises ValueError naming the key for a config of this
    method that cannot run (the shared sections are `config_lib`'s);
  prerequisites(config) -> {name: context.Prerequisite}: the runs it needs
    first (a teacher, a feature encoder), which the runner trains or loads
    and hands to `make` in the run context;
  make(config, ctx: context.RunContext) -> common.Method;
  setups(config) -> names, and setup_work(config, ctx) -> {name: call}
    (optional): precomputations `make` runs before the first step (DMD's
    regression pairs), which a study times warm and charges (`setups`);
  MICROBATCHES (optional): the `train` key of the batch its step splits
    into `train.microbatches` micro-batches (gradient accumulation);
    without it the method refuses microbatches > 1.
Adding a method is one module plus one line in `METHODS` below.
"""

from __future__ import annotations

import types

import ml_collections

from drift_jax import models
from drift_jax.config import config_lib
from drift_jax.methods import autoencoder
from drift_jax.methods import classifier
from drift_jax.methods import common
from drift_jax.methods import diffusion
from drift_jax.methods import dmd
from drift_jax.methods import drifting
from drift_jax.methods import mae
from drift_jax.methods.common import Method

METHODS: dict[str, types.ModuleType] = {
    'drifting': drifting,
    'diffusion': diffusion,
    'dmd': dmd,
    'classifier': classifier,
    'mae': mae,
    'autoencoder': autoencoder,
}


def get(name: str) -> types.ModuleType:
  """The method module registered as `name` (ValueError naming `method`)."""
  config_lib.check_choice('method', name, tuple(METHODS))
  return METHODS[name]


def setups(config) -> tuple[str, ...]:
  """The charged precomputations of `config`'s method (none if it
  declares none)."""
  return tuple(getattr(get(config.method), 'setups', lambda c: ())(config))


def setup_work(config, ctx) -> dict:
  """{name: a warm-timeable call} for each of `setups(config)`."""
  return getattr(get(config.method), 'setup_work', lambda c, x: {})(
      config, ctx)


def base_config() -> ml_collections.ConfigDict:
  """Every key a run understands: the shared sections, the networks'
  (`models.config_sections()`) and every method's."""
  return config_lib.compose([models.config_sections(),
                             *(m.CONFIG for m in METHODS.values())])


def renamed_keys() -> dict[str, str]:
  """{old dotted key: new} of the keys registered modules have moved
  (each module's `RENAMED`), so that an old config.json still resumes."""
  out = {}
  for module in METHODS.values():
    out.update(getattr(module, 'RENAMED', {}))
  return out


def runlocal(c: ml_collections.ConfigDict) -> None:
  """Shrinks a config in place to a seconds-long smoke run (tests): the
  shared sections' sizes, every network's and every method's `SMOKE`; the
  smoke sizes win over the config file's `defaults_by_method`."""
  models.smoke(c.model)
  for module in METHODS.values():
    for section, values in getattr(module, 'SMOKE', {}).items():
      c[section].update(values)
  config_lib.shared_smoke(c)


def finalize(config, overridden=()) -> ml_collections.ConfigDict:
  """`config_lib.finalize`: method-dependent defaults after overrides."""
  return config_lib.finalize(config, overridden)


def improved_toy_defaults(c: ml_collections.ConfigDict) -> None:
  """The toy defaults beyond the paper's demo recipe: the shared training
  (`config_lib.improved_toy_training`) and diffusion's noise range for
  unit-scale data (`diffusion.toy_noise_range`), each beside the sections
  it writes."""
  config_lib.improved_toy_training(c)
  diffusion.toy_noise_range(c)


def validate(config, device_count: int) -> None:
  """Start-up checks of the shared sections, then of the chosen method."""
  config_lib.validate(config, device_count, reference=base_config(),
                      methods=METHODS)
  common.validate_shared(config)
  module = get(config.method)
  autoencoder.validate_latent(config)
  _check_microbatches(config, module, device_count)
  module.validate(config)


def _check_microbatches(config, module, device_count: int) -> None:
  """`train.microbatches` > 1 only for a method that accumulates, in equal
  micro-batches on every device of the batch it splits."""
  micro = config.train.get('microbatches', 1)
  if micro == 1:
    return
  batch_key = getattr(module, 'MICROBATCHES', None)
  if not batch_key:
    able = sorted(n for n, m in METHODS.items()
                  if getattr(m, 'MICROBATCHES', None))
    raise ValueError(f'`train.microbatches` > 1 (gradient accumulation) is '
                     f'implemented for method {able} only; '
                     f'method={config.method!r} needs train.microbatches=1.')
  size = config.train[batch_key]
  if size % (micro * device_count):
    raise ValueError(
        f'`train.microbatches` = {micro} must split `train.{batch_key}` = '
        f'{size} into equal micro-batches on each of the {device_count} '
        f'devices (use a divisor of {size // device_count}).')


__all__ = ['METHODS', 'Method', 'base_config', 'finalize', 'get',
           'improved_toy_defaults', 'renamed_keys', 'runlocal', 'validate']
