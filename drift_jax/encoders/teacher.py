"""The diffusion teacher as a frozen network: DMD's teacher, and the
feature encoder of teacher-feature drifting (`features.encoder_kind=
'teacher'`).

Teacher-feature drifting (arXiv 2605.07327) computes the drifting loss in
a pretrained diffusion model's hidden states instead of an MAE's, which
makes drifting a one-step distillation method beside DMD with the same
network. The paper has no public code; here the features are the
denoiser's hidden maps (`models.edm.EDMPreconditioned.hidden_states`: the
U-Net's block outputs, the DiT's token grids after every second block) on
the clean sample at the fixed noise level `FEATURE_SIGMA` = sigma_data, where
EDM's skip weight c_skip = sigma_data^2 / (sigma^2 + sigma_data^2) is 1/2:
the network weighs the input's coarse structure and its detail alike (our
choice; no noise is added, so the features are a deterministic function
of the sample).

The teacher is a `diffusion` run trained first by the student into
workdir/encoder (the run DMD's `dmd.teacher='train'` would train, of
`dmd.teacher_steps` steps), or the directory of a finished one. It enters
the drifting step as constants, so gradients reach the generator through
it and never change it.
"""

from __future__ import annotations

import os
from typing import Any
from typing import NamedTuple

import jax
import ml_collections
from flax import nnx

from drift_jax.encoders import pretrained
from drift_jax.methods import common
from drift_jax.methods import diffusion
from drift_jax.methods import dmd
from drift_jax.methods.context import RunContext
from drift_jax.methods.context import Teacher
from drift_jax.parallel import sharding as parallel
from drift_jax.train import checkpoint
from drift_jax.train import workdir as workdir_lib

NAME = 'teacher'
SEED = 0  # unused: the teacher run keeps the student's seed (as DMD's)
LENGTH_KEY = 'dmd.teacher_steps'  # the teacher run's length (as DMD's)
FEATURE_SIGMA = 0.5  # = diffusion.sigma_data's default


def run_config(config, seed: int, schema):
  """The diffusion run a teacher-feature student trains first: DMD's
  teacher run (`dmd.teacher_config`) of the student's data and denoiser."""
  del seed, schema
  c = dmd.teacher_config(config)
  c.features.encoder = 'none'  # the teacher itself works on pixels
  return c


def _restore(teacher_dir: str, *, dim: int, image_shape, num_classes,
             allow_unfinished: bool = False):
  tconfig = ml_collections.ConfigDict(workdir_lib.read_config(teacher_dir))
  if tconfig.method != diffusion.NAME:
    raise ValueError(f'Teacher {teacher_dir!r} is a {tconfig.method!r} run; '
                     f'a teacher must be a `method={diffusion.NAME}` run.')
  budget = pretrained.check_finished(teacher_dir, tconfig, 'Teacher',
                                     allow_unfinished)
  mesh = parallel.local_mesh()
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
  return net, common.eval_params(state['denoiser']), budget


def load_teacher(teacher_dir: str, *, dim: int, image_shape=None,
                 num_classes: int = 0,
                 allow_unfinished: bool = False) -> Teacher:
  """Loads a finished `diffusion` run's (EMA) denoiser from its workdir.

  Raises:
    FileNotFoundError / ValueError naming the path for anything that is not
    a diffusion workdir of data dimension `dim`, or (unless
    `allow_unfinished`) a run that stopped before its train.steps.
  """
  net, params, budget = _restore(teacher_dir, dim=dim,
                                 image_shape=image_shape,
                                 num_classes=num_classes,
                                 allow_unfinished=allow_unfinished)
  return Teacher(denoise=net.apply, params=params,
                 steps=int(budget['steps']),
                 seconds=float(budget['wall_seconds']))


class FrozenTeacher(NamedTuple):
  """A frozen denoiser read as a feature encoder."""
  graphdef: Any
  params: Any
  meta: dict

  def feature_maps(self, params, x):
    return nnx.merge(self.graphdef, params).hidden_states(x, FEATURE_SIGMA)


def load(directory: str, dataset, allow_unfinished: bool = False
         ) -> FrozenTeacher:
  """The finished diffusion run in `directory` as a feature encoder. Its
  features are unconditional (the null label of a conditional teacher)."""
  if dataset.image_shape is None:
    raise ValueError("features.encoder_kind='teacher' needs image data; "
                     f'data {dataset.name!r} has none.')
  # A conditional teacher was trained on these data's classes.
  conditional = workdir_lib.read_config(directory).get(
      'conditional', {}).get('enabled', False)
  net, params, budget = _restore(
      directory, dim=dataset.dim, image_shape=dataset.image_shape,
      num_classes=dataset.num_classes if conditional else 0,
      allow_unfinished=allow_unfinished)
  return FrozenTeacher(net.graphdef, params,
                       dict(steps=int(budget['steps']),
                            seconds=float(budget['wall_seconds']),
                            sigma=FEATURE_SIGMA))

