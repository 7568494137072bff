"""Prerequisite runs: what a run trains or loads before its first step.

A method declares what it needs (`prerequisites(config)` in its module:
a DMD teacher, a feature encoder); the runner adds the evaluation
classifier of labelled image data. Every one of them goes through
`resolve`: 'train' (`workdir.TRAIN_HERE`) trains it into its folder of the
run's workdir (reused when finished there), a directory loads a finished
one, and `cost` says what it cost, which the runner charges to the run's
`budget/total_seconds`. Teachers and encoders are loaded read-only and
enter the step as constants, so they are never saved with the student.

A teacher is trained by the runner itself (`train_run`, passed in by the
runner, so that this module does not import it).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import jax
import ml_collections

from drift_jax import checkpoint
from drift_jax import classifier as classifier_lib
from drift_jax import parallel
from drift_jax import workdir as workdir_lib
from drift_jax.context import Prerequisite
from drift_jax.context import RunContext
from drift_jax.context import Teacher
from drift_jax.methods import common
from drift_jax.methods import diffusion

KINDS = ('oracle_teacher', 'teacher', 'encoder', 'classifier')
# Each prerequisite trained in a workdir has its own folder there.
FOLDERS = {'teacher': workdir_lib.TEACHER_DIR,
           'encoder': workdir_lib.ENCODER_DIR,
           'classifier': workdir_lib.CLASSIFIER_DIR}
SEEDS = {'encoder': classifier_lib.ENCODER_SEED,
         'classifier': classifier_lib.EVAL_SEED}


def resolve(request: Prerequisite, *, workdir: str, dataset, config,
            num_classes: int, train_run: Callable[..., dict]):
  """The prerequisite `request` asks for, trained first if it must be.

  Args:
    request: what to resolve (kind, 'train' or a directory, run config).
    workdir: the run's workdir (a trained prerequisite goes in a folder).
    dataset: the run's data (`data.Dataset`).
    config: the run's config (`classifier` section for classifiers).
    num_classes: classes of a class-conditional run (0: none).
    train_run: `runner.train_and_evaluate`, to train a teacher run.
  """
  if request.kind not in KINDS:
    raise ValueError(f'Unknown prerequisite kind {request.kind!r}; known: '
                     f'{KINDS}.')
  if request.kind == 'oracle_teacher':
    return oracle_teacher(dataset.mixture)
  folder = os.path.join(workdir, FOLDERS[request.kind])
  if request.kind == 'teacher':
    directory = request.choice
    if request.choice == workdir_lib.TRAIN_HERE:
      train_run(request.run_config, folder)
      directory = folder
    return load_teacher(directory, dim=dataset.dim,
                        image_shape=dataset.image_shape,
                        num_classes=num_classes)
  return classifier_lib.resolve(
      request.choice, folder, dataset, config.classifier,
      seed=SEEDS[request.kind],
      checkpoint_every=config.train.checkpoint_every)


def oracle_teacher(mixture) -> Teacher:
  """The exact `GaussianMixture.denoiser` (Gaussian-mixture data only)."""
  if mixture is None:
    raise ValueError("The oracle teacher needs Gaussian-mixture data.")
  return Teacher(lambda params, x, s, labels=None: mixture.denoiser(x, s),
                 None)


def cost(resolved) -> tuple[int, float]:
  """(training steps, wall seconds) a resolved prerequisite cost."""
  if isinstance(resolved, Teacher):
    return resolved.steps, resolved.seconds
  if isinstance(resolved, classifier_lib.Classifier):
    return (int(resolved.meta.get('steps', 0)),
            float(resolved.meta.get('seconds', 0.0)))
  return 0, 0.0


def load_teacher(teacher_dir: str, *, dim: int, image_shape=None,
                 num_classes: int = 0) -> Teacher:
  """Loads a finished `diffusion` run's (EMA) denoiser from its workdir.

  Raises:
    FileNotFoundError / ValueError naming the path for anything that is not
    a diffusion workdir of data dimension `dim`.
  """
  tconfig = ml_collections.ConfigDict(workdir_lib.read_config(teacher_dir))
  if tconfig.method != diffusion.NAME:
    raise ValueError(f'Teacher {teacher_dir!r} is a {tconfig.method!r} run; '
                     f'a teacher must be a `method={diffusion.NAME}` run.')
  mesh = parallel.make_mesh(1)
  ctx = RunContext(dim=dim, mesh=mesh, image_shape=image_shape,
                   num_classes=num_classes)
  method = diffusion.make(tconfig, ctx)
  abstract = checkpoint.abstract_like(
      jax.eval_shape(method.init, jax.random.key(0)),
      parallel.replicated(mesh))
  try:
    _, state = checkpoint.restore_from(
        os.path.join(teacher_dir, workdir_lib.CHECKPOINT_DIR), abstract)
  except ValueError as e:  # structure mismatch: another data dimension
    raise ValueError(f'Teacher {teacher_dir!r} does not match data of '
                     f'dimension {dim}: {e}') from e
  net = diffusion.make_denoiser_net(tconfig, dim, image_shape=image_shape,
                                    num_classes=num_classes)
  budget = workdir_lib.read_budget(teacher_dir)
  return Teacher(denoise=net.apply,
                 params=common.eval_params(state['denoiser']),
                 steps=int(budget['steps']),
                 seconds=float(budget['wall_seconds']))
