"""Image runs through the runner (configs/digits.py, runlocal sizes):
pixel and feature-space drifting, class-conditional drifting with CFG,
the conditional diffusion teacher and DMD, with the classifier metrics."""

import json
import os

import jax
import ml_collections
import numpy as np
import pytest

from drift_jax import fields
from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.data import datasets as data_lib
from drift_jax.encoders import classifier
from drift_jax.fields import features
from drift_jax.methods import drifting
from drift_jax.parallel import sharding as parallel
from drift_jax.theory import losses
from drift_jax.train import reporting
from drift_jax.train import runner


def _digits(arg='', **train):
  c = config_lib.load_config_file(f'configs/digits.py:runlocal{arg}')
  c.eval.plot = False
  c.train.update(train)
  return c


def _last(workdir):
  return reporting.read_metrics(workdir)[-1]


def test_pixel_drifting_logs_classifier_metrics(tmp_path, digits_classifier):
  c = _digits(eval_every=6)  # one evaluation, at the end
  summary = runner.train_and_evaluate(c, str(tmp_path))
  for key in ('eval/feature_fd', 'eval/feature_fd_floor', 'eval/precision',
              'eval/recall', 'eval/classifier_held_out_accuracy'):
    assert np.isfinite(summary[key]), key
  assert 'eval/class_accuracy' not in summary  # unconditional
  assert json.loads((tmp_path / 'classifier' / 'config.json').read_text())[
      'method'] == 'classifier'  # a run of the classifier method
  # The session's shared classifier (tests/conftest.py) is this network.
  dataset = data_lib.for_run(methods.finalize(c))
  own, shared = (classifier.load(d, dataset)
                 for d in (str(tmp_path / 'classifier'), digits_classifier))
  for a, b in zip(jax.tree.leaves(own.params), jax.tree.leaves(shared.params),
                  strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not os.path.exists(tmp_path / 'encoder')


def test_feature_space_conditional_run_is_device_count_invariant(
    tmp_path, digits_classifier):
  """Feature-space drifting with CFG: the encoder is trained once into
  workdir/encoder (its cost charged), never saved with the generator, and
  the global-scope step gives the same losses on 1 and 8 devices."""
  got = []
  for n in (1, 8):
    c = _digits(',features,conditional', steps=3, eval_every=3)
    c.eval.classifier = digits_classifier  # trained once per session
    # Fewer feature sets and one temperature: the same code paths, a
    # quarter of the compile time.
    c.features.patch_sizes = ()
    c.field.temperatures = (0.2,)
    c.mesh.num_devices = n
    workdir = str(tmp_path / f'run{n}')
    summary = runner.train_and_evaluate(c, workdir)
    assert 0.0 <= summary['eval/class_accuracy'] <= 1.0
    assert summary['time/encoder_wall_seconds'] > 0
    assert (summary['time/total_wall_seconds']
            >= summary['time/encoder_wall_seconds'])
    got.append([r['train/loss'] for r in reporting.read_metrics(workdir)])
  # float32: the loss sums ~10 fields over per-location features whose
  # distances are normalised by batch means; 8 shards change the order of
  # those reductions, a ~1e-5 relative change per field.
  np.testing.assert_allclose(got[0], got[1], rtol=2e-4)
  from drift_jax.train import checkpoint
  assert checkpoint.saved_keys(str(tmp_path / 'run1' / 'checkpoints')) == {
      'gen'}


def test_conditional_dmd_trains_a_conditional_teacher(tmp_path,
                                                       digits_classifier):
  c = _digits(',method=dmd,conditional', eval_every=6)  # one evaluation
  # The student and its teacher score with the session's classifier.
  c.eval.classifier = digits_classifier
  summary = runner.train_and_evaluate(c, str(tmp_path))
  assert not (tmp_path / 'classifier').exists()
  assert summary['budget/teacher_steps'] == 6
  assert np.isfinite(summary['eval/class_accuracy'])
  with open(tmp_path / 'teacher' / 'config.json') as f:
    assert '"enabled": true' in f.read()


def test_class_balanced_batches_hold_each_class_equally():
  config = ml_collections.ConfigDict(dict(
      name='digits', path='', key='', held_out_fraction=0.2, image_size=8))
  dataset = data_lib.make_dataset(config, eval_size=100, seed=0)
  batches = []
  for n in (1, 8):
    fn = data_lib.make_batch_fn(dataset, parallel.make_mesh(n),
                                batch_size=40, steps_per_call=2, seed=3,
                                class_balanced=True)
    batches.append(jax.device_get(fn(10)))
  np.testing.assert_array_equal(batches[0]['x'], batches[1]['x'])
  labels = batches[0]['labels']
  np.testing.assert_array_equal(labels[0], np.repeat(np.arange(10), 4))
  # Every row is a training image of its label.
  pairs = zip(dataset.train, dataset.labels, strict=True)
  lookup = {row.tobytes(): lab for row, lab in pairs}
  for row, lab in zip(batches[0]['x'][1], labels[1], strict=True):
    assert lookup[row.tobytes()] == lab
  assert not np.array_equal(batches[0]['x'][0], batches[0]['x'][1])


def test_raw_feature_set_reproduces_the_pixel_field():
  """The grouped path with the raw sample as its only feature set and one
  class is the plain drifting loss (same field, same value)."""
  c = _digits(eval_every=6)  # one evaluation, at the end
  mesh = parallel.make_mesh(1)
  field_fn = drifting.field_fn_from_config(c, mesh)
  x = jax.random.normal(jax.random.key(0), (40, 64))
  pos = jax.random.normal(jax.random.key(1), (40, 64)) + 0.3
  group_field = drifting.make_group_field(
      fields.FieldSpec.from_config(c.field))
  grouped = features.grouped_field(group_field, x[None], pos[None])[0]
  # float32, |V| up to ~10 after drift normalisation: atol 1e-4 is ~1e-5
  # relative (the two paths block and vmap the same sums differently).
  np.testing.assert_allclose(grouped, field_fn(x, pos), rtol=1e-5,
                             atol=1e-4)
  assert float(losses.drift_loss(x, grouped)) > 0


@pytest.mark.parametrize('overrides, match', [
    ({'conditional.enabled': True, 'data.name': 'checkerboard'},
     'labelled image data'),
    ({'features.encoder': 'train', 'method': 'dmd'}, 'drifting'),
    ({'features.encoder': '/no/such/dir'}, 'features.encoder'),
    ({'features.encoder': 'train', 'features.encoder_kind': 'inception'},
     'features.encoder_kind'),
    ({'eval.classifier': '/no/such/dir'}, 'eval.classifier'),
    ({'conditional.alpha_min': 0.5}, 'alpha_min'),
    ({'features.encoder': 'train', 'drifting.negatives_scope': 'local'},
     'negatives_scope'),
])
def test_image_config_errors_name_the_key(tmp_path, overrides, match):
  c = _digits(eval_every=6)  # one evaluation, at the end
  for key, value in overrides.items():
    config_lib.set_by_path(c, key, value)
  with pytest.raises(ValueError, match=match):
    runner.train_and_evaluate(c, str(tmp_path))


def test_image_networks_need_images_and_labels_need_conv_nets(tmp_path):
  c = methods.base_config()
  methods.runlocal(c)
  c.model.generator.name = 'conv'
  with pytest.raises(ValueError, match='needs image data'):
    runner.train_and_evaluate(c, str(tmp_path / 'a'))
  c = _digits(',conditional')
  c.model.generator.name = 'mlp'
  with pytest.raises(ValueError, match='conditional network'):
    runner.train_and_evaluate(c, str(tmp_path / 'b'))
