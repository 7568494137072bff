"""DMD teachers: the exact oracle, a teacher trained on demand, or a path.

A trained teacher is an ordinary `diffusion` run in `workdir/teacher`,
trained by the same runner; its steps and wall time are charged to the
student's compute budget, and a finished teacher is reused as is. Teachers
are loaded read-only and enter the student's step as constants, so they are
never saved with the student.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections

from drift_jax import checkpoint
from drift_jax import parallel
from drift_jax.methods import common
from drift_jax.methods import diffusion
from drift_jax.methods import dmd

TEACHER_SUBDIR = 'teacher'


def teacher_config(config) -> ml_collections.ConfigDict:
  """The diffusion run a `dmd.teacher='train'` student trains first: same
  data, denoiser and optimiser, `dmd.teacher_steps` steps, EMA."""
  c = ml_collections.ConfigDict(config.to_dict())
  c.method = 'diffusion'
  steps = config.dmd.teacher_steps
  c.train.update(steps=steps, steps_per_call=1, ema_decay=0.999,
                 eval_every=steps, checkpoint_every=steps,
                 log_every=min(config.train.log_every, steps))
  return c


def resolve(config, workdir: str, dataset, num_classes: int = 0
            ) -> dmd.Teacher | None:
  """The teacher `config.dmd.teacher` names, or None if none is needed
  (class-conditional with `num_classes` > 0)."""
  if config.method != 'dmd' or config.dmd.denoisers == 'kde':
    return None
  choice = config.dmd.teacher
  if choice == 'oracle':
    return dmd.oracle_teacher(dataset.mixture)
  if choice == 'train':
    from drift_jax import runner  # the runner trains its own teachers
    teacher_dir = os.path.join(workdir, TEACHER_SUBDIR)
    runner.train_and_evaluate(teacher_config(config), teacher_dir)
    return load(teacher_dir, dim=dataset.dim,
                image_shape=dataset.image_shape, num_classes=num_classes)
  return load(choice, dim=dataset.dim, image_shape=dataset.image_shape,
              num_classes=num_classes)


def load(teacher_dir: str, *, dim: int, image_shape=None,
         num_classes: int = 0) -> dmd.Teacher:
  """Loads a finished `diffusion` run's (EMA) denoiser from its workdir.

  Raises:
    FileNotFoundError / ValueError naming the path for anything that is not
    a diffusion workdir of data dimension `dim`.
  """
  from drift_jax import runner
  config_path = os.path.join(teacher_dir, runner.CONFIG_FILE)
  if not os.path.isfile(config_path):
    raise FileNotFoundError(
        f'Teacher {teacher_dir!r} has no {runner.CONFIG_FILE}; expected the '
        'workdir of a `method=diffusion` run (config.json, checkpoints/).')
  with open(config_path) as f:
    tconfig = ml_collections.ConfigDict(json.load(f))
  if tconfig.method != 'diffusion':
    raise ValueError(f'Teacher {teacher_dir!r} is a {tconfig.method!r} run; '
                     'a teacher must be a `method=diffusion` run.')
  mesh = parallel.make_mesh(1)
  spec = dict(image_shape=image_shape, num_classes=num_classes)
  method = diffusion.make(tconfig, dim=dim, mesh=mesh, **spec)
  abstract = checkpoint.abstract_like(
      jax.eval_shape(method.init, jax.random.key(0)),
      parallel.replicated(mesh))
  try:
    _, state = checkpoint.restore_from(
        os.path.join(teacher_dir, runner.CHECKPOINT_DIR), abstract)
  except ValueError as e:  # structure mismatch: another data dimension
    raise ValueError(f'Teacher {teacher_dir!r} does not match data of '
                     f'dimension {dim}: {e}') from e
  net = diffusion.make_denoiser_net(tconfig, dim, **spec)
  budget = runner.read_budget(teacher_dir)
  return dmd.Teacher(denoise=net.apply,
                     params=common.eval_params(state['denoiser']),
                     steps=int(budget['steps']),
                     seconds=float(budget['wall_seconds']))
