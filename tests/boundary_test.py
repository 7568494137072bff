"""The runner/method boundary: method-dependent defaults after overrides,
one "train here" sentinel, D_fake's start from the teacher, labels taken
from the batch, the class-major layout."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.data import datasets as data_lib
from drift_jax.methods import diffusion
from drift_jax.methods import dmd
from drift_jax.methods import drifting
from drift_jax.methods.context import RunContext
from drift_jax.methods.context import Teacher
from drift_jax.parallel import sharding as parallel
from drift_jax.train import prerequisites
from tests import runner_helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, 'configs', 'digits.py')


def _finalized(argv_tail):
  """A config as experiments/main.py builds it: file, overrides, finalize."""
  return methods.finalize(*runner_helpers.load_flags_config(argv_tail))


@pytest.mark.parametrize('argv,steps', [
    ([f'--config={DIGITS}'], 1500),  # drifting: the file's value
    ([f'--config={DIGITS}:method=dmd'], 1000),  # DMD's default
    ([f'--config={DIGITS}', '--config.method=dmd'], 1000),  # after override
    ([f'--config={DIGITS}', '--config.method=dmd',
      '--config.train.steps=7'], 7),  # an explicit override wins
    ([f'--config={DIGITS}:method=dmd,runlocal'], 6),  # smoke sizes win
])
def test_method_defaults_apply_after_overrides(argv, steps):
  c = _finalized(argv)
  assert c.train.steps == steps
  assert not c.defaults_by_method  # finalized: applying again is a no-op
  assert methods.finalize(c).train.steps == steps


def test_sweep_points_get_method_defaults():
  from drift_jax.studies import sweep as ablate
  sweep = ablate.load_sweep(os.path.join(ROOT, 'sweeps',
                                         'digits_methods.py'))
  steps = {name: ablate.make_config(sweep, overrides, 0).train.steps
           for name, _, overrides in ablate.points(sweep)}
  assert steps['run=dmd'] == steps['run=dmd_conditional'] == 1000
  assert steps['run=drifting_pixel'] == 1500


def test_one_sentinel_trains_every_prerequisite_here():
  c = methods.base_config()
  assert c.eval.classifier == c.dmd.teacher.replace('oracle', 'train') == (
      'train')
  c.eval.classifier = ''  # the old spelling still means "train one here"
  assert methods.finalize(c).eval.classifier == 'train'
  c.eval.classifier = 'elsewhere'
  with pytest.raises(ValueError, match="`eval.classifier` must be 'train'"):
    methods.validate(methods.finalize(c), 1)


def _dmd_config(width):
  c = methods.base_config()
  methods.runlocal(c)
  c.method, c.data.name = 'dmd', 'gmm'
  c.model.denoiser.width = width
  return c


def _trained_looking_teacher(width):
  net = diffusion.make_denoiser_net(_dmd_config(width), 2)
  return Teacher(net.apply, net.init(jax.random.key(7)), steps=1)


@pytest.mark.parametrize('fake_init', ['teacher', 'scratch'])
def test_fake_denoiser_starts_as_the_teacher_or_says_why_not(fake_init):
  ctx = RunContext(dim=2, mesh=parallel.make_mesh(1),
                   prerequisites={'teacher': _trained_looking_teacher(32)})
  c = _dmd_config(32)
  c.dmd.fake_init = fake_init
  state = dmd.make(c, ctx).init(jax.random.key(0))
  same = jax.tree.map(np.array_equal, state['fake']['params'],
                      ctx.prerequisites['teacher'].params)
  assert all(jax.tree.leaves(same)) == (fake_init == 'teacher')


def test_a_teacher_of_another_shape_is_an_error_unless_scratch():
  ctx = RunContext(dim=2, mesh=parallel.make_mesh(1),
                   prerequisites={'teacher': _trained_looking_teacher(16)})
  c = _dmd_config(32)
  with pytest.raises(ValueError, match="dmd.fake_init='scratch'"):
    dmd.make(c, ctx)
  c.dmd.fake_init = 'scratch'
  state = dmd.make(c, ctx).init(jax.random.key(0))
  assert 'fake' in state
  c.dmd.fake_init = 'copy'
  with pytest.raises(ValueError, match='`dmd.fake_init` must be one of'):
    methods.validate(c, 1)


def test_oracle_teacher_needs_mixture_data():
  with pytest.raises(ValueError, match='Gaussian-mixture'):
    prerequisites.oracle_teacher(None)


def test_class_major_layout_is_checked():
  data_lib.check_class_major(np.repeat(np.arange(4), 3), 4)
  with pytest.raises(ValueError, match='class-major'):
    data_lib.check_class_major(np.tile(np.arange(4), 3), 4)


def test_conditional_drifting_groups_data_by_the_batch_labels():
  """Shuffling a class-balanced batch (rows and labels together) leaves
  the conditional drifting step unchanged up to summation order; reading
  classes from row positions instead would mislabel most rows."""
  c = config_lib.load_config_file('configs/digits.py:conditional,runlocal')
  c = methods.finalize(c)
  c.field.temperatures = (0.2,)
  ctx = RunContext(dim=64, mesh=parallel.make_mesh(1), image_shape=(8, 8, 1),
                   num_classes=10)
  method = drifting.make(c, ctx)
  x = jax.random.normal(jax.random.key(0), (40, 64))
  labels = data_lib.class_major_labels(40, 10)
  perm = jax.random.permutation(jax.random.key(1), 40)
  state = method.init(jax.random.key(2))
  step = jax.jit(method.train_step)
  key = jax.random.key(3)
  _, m_sorted = step(state, (), {'x': x, 'labels': labels}, key)
  _, m_shuffled = step(state, (), {'x': x[perm], 'labels': labels[perm]},
                       key)
  _, m_wrong = step(state, (), {'x': x[perm], 'labels': labels}, key)
  np.testing.assert_allclose(m_shuffled['train/loss'], m_sorted['train/loss'],
                             rtol=1e-5)
  assert abs(float(m_wrong['train/loss'] / m_sorted['train/loss']) - 1) > 1e-3
  assert jnp.isfinite(m_sorted['train/loss'])
