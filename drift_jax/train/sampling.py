"""Samples from a trained run: `load_generator(workdir, ema=True)`.

Reads a finished or interrupted run's workdir (config.json and the newest
checkpoint that restores) without writing to it: the method is rebuilt
from the saved config, its prerequisites (a DMD teacher, a feature
encoder) are loaded where they are finished and never trained here, and
`Generator.sample` draws with the method's own sampler (one network call
for a one-step generator, the Heun solver for the diffusion reference).
With no seed, a sample uses the key of the run's evaluation, so
`load_generator(w).sample(n_eval)` reproduces the run's last
`samples.npy` when the workdir is finished.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from drift_jax import methods
from drift_jax.data import datasets as data_lib
from drift_jax.encoders import latent as latent_lib
from drift_jax.encoders import pretrained
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from drift_jax.train import checkpoint
from drift_jax.train import mirror
from drift_jax.train import prerequisites as prerequisites_lib
from drift_jax.train import runner
from drift_jax.train import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class Generator:
  """A trained run's sampler (see `load_generator`).

  Attributes:
    config: the run's finalised config.
    step: the step of the checkpoint the parameters come from.
    finished: whether that step is the config's `train.steps`.
    ema: whether the EMA parameters are used (when the run kept them).
    num_classes: classes of a class-conditional run (0: unconditional).
    image_shape: (H, W, C) of image data, else None.
    dataset: the run's data (held-out images for a real-data panel).
  """
  config: ml_collections.ConfigDict
  step: int
  finished: bool
  ema: bool
  num_classes: int
  image_shape: tuple[int, ...] | None
  dataset: Any
  _sample: Any
  _state: Any
  _constants: Any
  _decode: Any = None  # a latent-space run's decoder

  def labels(self, n: int) -> np.ndarray | None:
    """[n] class of each row of `sample(n)` (class-major), or None."""
    if not self.num_classes:
      return None
    return np.asarray(data_lib.class_major_labels(n, self.num_classes))

  def sample(self, n: int, seed: int | None = None) -> np.ndarray:
    """[n, D] samples (pixels for a latent-space run); class-major labels
    (`labels(n)`) when conditional, at the guidance scale given to
    `load_generator`. `seed` None: the key of the run's evaluation."""
    if not isinstance(n, int) or n < 1:
      raise ValueError(f'`n` must be a positive integer, got {n!r}.')
    if self.num_classes and n < self.num_classes:
      raise ValueError(f'`n` must be at least the number of classes '
                       f'({self.num_classes}), got {n}.')
    key = (runner.evaluation_key(self.config.seed) if seed is None
           else jax.random.key(seed))
    return latent_lib.to_pixels(self._decode, np.asarray(
        self._sample(self._state, self._constants, key, n)))


def load_generator(workdir: str, ema: bool = True,
                   guidance: float | None = None) -> Generator:
  """The generator of the run in `workdir`, at its newest checkpoint.

  Args:
    workdir: a run's workdir (finished or interrupted).
    ema: sample with the EMA parameters when the run kept them (what the
      runner evaluates); False: the raw parameters.
    guidance: the CFG scale alpha of a class-conditional drifting run
      (default: its `conditional.eval_alpha`); refused elsewhere.

  Raises:
    FileNotFoundError / ValueError naming the workdir for anything that is
    not a run's workdir with a checkpoint, a method that does not generate,
    or an unfinished or missing prerequisite.
  """
  workdir = mirror.readable(workdir)  # a bucket's: its local copy
  saved = workdir_lib.read_config(workdir)
  config = methods.finalize(ml_collections.ConfigDict(saved))
  module = methods.get(config.method)
  if guidance is not None:
    _set_guidance(config, module, workdir, guidance)
  dataset = data_lib.for_run(config)
  num_classes = (dataset.num_classes if config.conditional.enabled else 0)
  mesh = parallel.make_mesh(1)
  # As the runner resolves them (a latent space first: the method then
  # generates latents, decoded by `sample`), but never trained here.
  dataset, _, resolved = runner.resolve_prerequisites(
      config, workdir, dataset, module.prerequisites(config),
      prerequisites_lib.latent_request(config), num_classes,
      train_run=_never_train(config))
  ctx = RunContext(dim=dataset.dim, mesh=mesh,
                   image_shape=dataset.image_shape, num_classes=num_classes,
                   prerequisites=resolved, data=dataset)
  method = module.make(config, ctx)
  if method.sample is None:
    raise ValueError(f'{workdir!r} is a {config.method} run, which does '
                     'not generate samples.')
  replicated = parallel.replicated(mesh)
  abstract = checkpoint.abstract_like(
      jax.eval_shape(method.init, jax.random.key(0)), replicated)
  step, state = checkpoint.restore_from(
      os.path.join(workdir, workdir_lib.CHECKPOINT_DIR), abstract)
  if not ema:
    state = _without_ema(state)
  pixels = runner.scored_data(dataset)
  return Generator(
      config=config, step=int(step), finished=step >= config.train.steps,
      ema=ema and _has_ema(state), num_classes=num_classes,
      image_shape=pixels.image_shape, dataset=pixels,
      _sample=jax.jit(method.sample, static_argnums=3),
      _state=state, _constants=jax.device_put(method.constants, replicated),
      _decode=dataset.decode)


def _set_guidance(config, module, workdir: str, guidance: float) -> None:
  """`conditional.eval_alpha` = `guidance`, for a class-conditional run of
  a method whose sampler follows it (it says so: `GUIDED_SAMPLING`)."""
  if not (getattr(module, 'GUIDED_SAMPLING', False)
          and config.conditional.enabled):
    raise ValueError(f'`guidance` applies to class-conditional runs of a '
                     f'method that samples with guidance; {workdir!r} is '
                     f'a {config.method} run'
                     + ('' if config.conditional.enabled
                        else ' without classes') + '.')
  config.conditional.eval_alpha = float(guidance)


def _never_train(config):
  """A `train_run` for `prerequisites.resolve` that trains nothing: a
  prerequisite in the workdir must be finished already."""
  def check(run_config, folder):
    pretrained.check_finished(
        folder, run_config, f'Prerequisite {os.path.basename(folder)!r}',
        allow_unfinished=bool(config.train.get('allow_unfinished', False)))
  return check


def _without_ema(tree):
  """The state with every 'ema' entry removed: `eval_params` then takes
  the raw parameters."""
  if isinstance(tree, dict):
    return {k: _without_ema(v) for k, v in tree.items() if k != 'ema'}
  return tree


def _has_ema(tree) -> bool:
  if isinstance(tree, dict):
    return 'ema' in tree or any(_has_ema(v) for v in tree.values())
  return False
