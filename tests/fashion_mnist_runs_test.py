"""Each `configs/fashion_mnist.py` variant trains at `runlocal` size through
the runner and scores in the evaluation classifier's features."""

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.data import datasets
from drift_jax.data import images as image_data
from drift_jax.encoders import teacher as teacher_features
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from drift_jax.train import prerequisites
from drift_jax.train import runner
from experiments.benchmarks import image_step

pytestmark = pytest.mark.skipif(
    not os.path.isdir(image_data.FASHION_MNIST_DIR),
    reason='Fashion-MNIST is not installed '
    f'({image_data.FASHION_MNIST_INSTALL} as root installs it)')


def _config(arg):
  return config_lib.load_config_file(f'configs/fashion_mnist.py:runlocal,{arg}')


@pytest.fixture(scope='module')
def eval_classifier(tmp_path_factory):
  """The runs' evaluation classifier, trained once for the module: it
  depends on the data, their split and the `classifier` section only, so
  every variant below would train this same network."""
  student = methods.finalize(_config('method=drifting'))
  request = prerequisites.eval_classifier(student, datasets.for_run(student))
  directory = str(tmp_path_factory.mktemp('fashion_classifier'))
  runner.train_and_evaluate(request.run_config, directory)
  return directory


# The variants this file's other test does not cover: the DiT generator
# with classes and CFG, the MAE encoder, DMD whose U-Net teacher's own
# network is the generator, as DMD2 (the diffusion method trains it; DMD
# with a separate generator is the digits' and the toys'; a DiT teacher
# trains for teacher features, below). The
# classifier encoder's path is the digits' (tests/images_test.py).
@pytest.mark.parametrize('arg, conditional', [
    ('generator=dit,conditional', True),
    ('encoder=mae', False),
    ('method=dmd,generator=teacher', False),
], ids=['drifting-dit-cfg', 'drifting-mae', 'dmd2-unet'])
def test_each_variant_trains_and_scores(tmp_path, eval_classifier, arg,
                                        conditional):
  c = _config(arg)
  c.eval.classifier = eval_classifier
  summary = runner.train_and_evaluate(c, str(tmp_path))
  for key in ('eval/feature_fd', 'eval/feature_fd_floor', 'eval/precision',
              'eval/recall', 'eval/energy_distance', 'eval/kid',
              'eval/kid_se', 'eval/kid_floor'):
    assert np.isfinite(summary[key]), key
  # The data row's floor is far below an untrained-ish generator's FD.
  assert summary['eval/feature_fd'] > summary['eval/feature_fd_floor']
  assert ('eval/class_accuracy' in summary) == conditional
  assert ('eval/class_fd_mean' in summary) == conditional
  assert summary['step'] == c.train.steps


def _tree_files(folder):
  return {p: open(p, 'rb').read() for p in sorted(
      str(f) for f in pathlib.Path(folder).rglob('*') if f.is_file())}


def test_teacher_features_train_the_generator_and_leave_the_teacher(
    tmp_path):
  """Teacher-feature drifting (no raw set, so only the teacher's hidden
  states carry the loss): one step moves the generator, the teacher's
  parameters are constants of the step, and a student run leaves the
  teacher's files as they were."""
  c = methods.finalize(_config('encoder=teacher,denoiser=dit'))
  c.features.raw = False
  c.eval.classifier = 'none'
  teacher_dir = str(tmp_path / 'teacher')
  runner.train_and_evaluate(teacher_features.run_config(c, 0, None),
                            teacher_dir)
  before = _tree_files(teacher_dir)
  c.features.encoder = teacher_dir
  dataset = datasets.for_run(c)
  frozen = teacher_features.load(teacher_dir, dataset)
  ctx = RunContext(dim=dataset.dim, mesh=parallel.make_mesh(1),
                   image_shape=dataset.image_shape,
                   prerequisites={'encoder': frozen})
  method = methods.get('drifting').make(c, ctx)
  state = method.init(jax.random.key(0))
  batch = jnp.asarray(dataset.train[:c.train.batch_size])
  new, metrics = jax.jit(method.train_step)(state, method.constants, batch,
                                            jax.random.key(1))
  assert set(new) == {'gen'}  # the teacher is not part of the state
  moved = [float(jnp.abs(a - b).max()) for a, b in zip(
      jax.tree.leaves(state['gen']['params']),
      jax.tree.leaves(new['gen']['params']), strict=True)]
  assert max(moved) > 0 and np.isfinite(float(metrics['train/loss']))
  # The step's constants are the loaded teacher, bit for bit.
  for a, b in zip(jax.tree.leaves(method.constants['encoder']),
                  jax.tree.leaves(frozen.params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  runner.train_and_evaluate(c, str(tmp_path / 'student'))
  assert _tree_files(teacher_dir) == before


def test_the_device_checks_image_step_runs_both_dtypes():
  """`experiments.benchmarks.image_step` (the device check's image rows) at
  its CPU smoke size: one row per compute dtype and the loss row.

  bfloat16 must change the losses (if `dit_dtype` were ignored the two
  trajectories would be bit-identical, from the same state and batches),
  and by little: bfloat16 rounds each product to 2^-8 relative while the
  parameters, gradients and loss stay float32, so over 4 steps of a tiny
  DiT the loss moves by well under 5 % (1.5e-3 measured over 6)."""
  s = image_step.sizes(quick=True)
  f32, bf16 = (image_step.measure(dtype, s) for dtype in image_step.DTYPES)
  assert len(f32['losses']) == len(bf16['losses']) == s['steps']
  relative = np.abs(bf16['losses'] - f32['losses']) / f32['losses']
  assert 0 < relative.max() < 0.05, relative
  for r in (f32, bf16):
    assert r['steps_per_second'] > 0 and r['gib'] > 0 and r['tflops'] > 0
  row = image_step.loss_row(f32['losses'], bf16['losses'], 'tiny')
  assert row.startswith('| image loss, bf16 vs f32 | tiny, 4 steps |')
