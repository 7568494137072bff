"""The image classifier (feature encoder and evaluation net), trained as a
run of the `classifier` method, the retired params.npz format it replaced,
and the image metrics the runner computes with it."""

import json
import os
import pathlib
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.data import datasets as data_lib
from drift_jax.encoders import classifier
from drift_jax.evaluators import image_eval
from drift_jax.methods import classifier as classifier_method
from drift_jax.train import prerequisites
from drift_jax.train import reporting
from drift_jax.train import runner

LEGACY = pathlib.Path(__file__).parent / 'data' / 'legacy_classifier'


@pytest.fixture(scope='module')
def digits():
  config = ml_collections.ConfigDict(dict(
      name='digits', path='', key='', held_out_fraction=0.2, image_size=8))
  return data_lib.make_dataset(config, eval_size=1000, seed=0)


def classifier_run(steps=300, **overrides):
  """A classifier run on the digits (1,000 held-out images)."""
  c = methods.base_config()
  methods.runlocal(c)
  c.data.name = 'digits'
  c.eval.num_samples = 1000
  student = methods.finalize(c)
  student.classifier.update(channels=(8, 16), steps=steps, batch_size=64,
                            lr=3e-3)
  run = classifier_method.run_config(student, 0, methods.base_config())
  for key, value in overrides.items():
    config_lib.set_by_path(run, key, value)
  return run


@pytest.fixture(scope='module')
def trained(tmp_path_factory, digits):
  directory = str(tmp_path_factory.mktemp('clf') / 'run')
  runner.train_and_evaluate(classifier_run(), directory)
  return classifier.load(directory, digits), directory


def test_classifier_learns_the_digits(digits, trained):
  """300 steps of a tiny net (8, 16 channels) reach ~77% held-out
  accuracy (the config's 32, 64 channels x 1,500 steps: ~98%); chance is
  10%, so > 50% fails for broken training or shuffled labels."""
  net, _ = trained
  assert digits.num_classes == 10
  assert net.meta['held_out_accuracy'] > 0.5
  assert net.meta['held_out_accuracy'] == classifier.accuracy_of(
      net, digits.held_out, digits.held_out_labels)
  assert net.meta['steps'] == 300 and net.meta['seconds'] > 0


def test_a_finished_run_is_reused_and_mismatches_name_the_directory(
    tmp_path, digits, trained):
  net, directory = trained
  again = runner.train_and_evaluate(classifier_run(), directory)
  assert again['num_compiles'] == 0  # finished: nothing trained again
  with pytest.raises(FileNotFoundError, match='holds no classifier run'):
    classifier.load(str(tmp_path / 'missing'), digits)
  other = digits.__class__(**{**digits.__dict__,
                              'image_shape': (16, 16, 1)})
  with pytest.raises(ValueError, match=r'is for images \(8, 8, 1\)'):
    classifier.load(directory, other)


def test_an_unfinished_classifier_is_refused(tmp_path, digits, trained):
  _, directory = trained
  copy = tmp_path / 'copy'
  shutil.copytree(directory, copy)
  config = json.loads((copy / 'config.json').read_text())
  config['train']['steps'] = 400
  (copy / 'config.json').write_text(json.dumps(config))
  with pytest.raises(ValueError, match='unfinished'):
    classifier.load(str(copy), digits)


def retired_train(dataset, c, seed):
  """The training loop classifiers had before the runner trained them
  (`classifier.train` until 2026-12), kept here as the reference: its
  final parameters and the loss of each step's minibatch."""
  model = classifier_method.build(dataset.image_shape, dataset.num_classes,
                                  c.channels, seed)
  graphdef, params = nnx.split(model)
  tx = optax.adam(optax.cosine_decay_schedule(c.lr, c.steps))
  x_all, y_all = jnp.asarray(dataset.train), jnp.asarray(dataset.labels)

  @jax.jit
  def step(params, opt_state, key):
    idx = jax.random.randint(key, (c.batch_size,), 0, x_all.shape[0])

    def loss_fn(p):
      logits = nnx.merge(graphdef, p)(x_all[idx])
      return optax.softmax_cross_entropy_with_integer_labels(
          logits, y_all[idx]).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  key, opt_state = jax.random.key(seed), tx.init(params)
  losses = []
  for i in range(c.steps):
    params, opt_state, loss = step(params, opt_state,
                                   jax.random.fold_in(key, i))
    losses.append(float(loss))
  return params, np.asarray(losses)


def test_the_runner_reproduces_the_retired_trainer(tmp_path):
  """The evaluation classifier of the digits runlocal student, trained as
  a classifier run, follows the retired trainer: the same init, Adam
  schedule and minibatch stream, so the same loss at every step and the
  same held-out logits.

  Not its parameters bit for bit: the two are different XLA programs, so
  their gradients may round differently, and Adam turns a rounding
  difference in a gradient near 0 (a dead ReLU's bias) into an O(lr)
  step; such parameters differ by O(1) relative after 20 steps yet change
  no output. Tolerance 1e-4 relative: rounding moves the losses by
  ~1e-7 (0 measured, with either of XLA's CPU fusion emitters), while a
  stream shifted by one step, a constant learning rate or another init
  move them by >= 1.4e-2 (measured)."""
  student = methods.finalize(ml_collections.ConfigDict(json.loads(
      (LEGACY / 'student_config.json').read_text())))
  dataset = data_lib.for_run(student)
  request = prerequisites.eval_classifier(student, dataset)
  run = str(tmp_path / 'run')
  runner.train_and_evaluate(request.run_config, run)
  fresh = classifier.load(run, dataset)
  params, losses = retired_train(dataset, student.classifier,
                                 classifier_method.EVAL_SEED)
  run_losses = [m['train/loss'] for m in reporting.read_metrics(run)
                if 'train/loss' in m]
  assert len(run_losses) == len(losses) == student.classifier.steps
  np.testing.assert_allclose(run_losses, losses, rtol=1e-4)
  held_out = jnp.asarray(dataset.held_out[:256])
  np.testing.assert_allclose(
      classifier_method.logits(fresh.graphdef, fresh.params, held_out),
      classifier_method.logits(fresh.graphdef, params, held_out),
      rtol=1e-4, atol=1e-5)
  assert not os.path.exists(tmp_path / 'run' / classifier.LEGACY_PARAMS_FILE)


def test_a_classifier_in_the_retired_format_still_loads():
  """tests/data/legacy_classifier was written by the retired trainer
  (classifier.json + params.npz) for the student of student_config.json;
  it loads read-only, with its stored weights, and its recorded held-out
  accuracy is that of the loaded network on the student's held-out set."""
  student = methods.finalize(ml_collections.ConfigDict(json.loads(
      (LEGACY / 'student_config.json').read_text())))
  dataset = data_lib.for_run(student)
  assert classifier.is_legacy(str(LEGACY))
  legacy = classifier.load(str(LEGACY), dataset)
  with np.load(LEGACY / classifier.LEGACY_PARAMS_FILE) as stored:
    arrays = [stored[f'arr_{i}'] for i in range(len(stored.files))]
  for a, b in zip(arrays, jax.tree.leaves(legacy.params), strict=True):
    np.testing.assert_array_equal(a, np.asarray(b))
  assert legacy.meta['held_out_accuracy'] == classifier.accuracy_of(
      legacy, dataset.held_out, dataset.held_out_labels)


def test_image_metrics_floor_and_collapse(digits, trained):
  """Held-out-like samples score near the floor; a collapsed generator
  (one image repeated) scores far above it, with recall ~0; class accuracy
  of correctly ordered real images equals the classifier's accuracy."""
  net, _ = trained
  metrics = image_eval.ImageMetrics(net, digits, num_classes=10)
  real = metrics(digits.floor_reference)
  collapsed = metrics(np.repeat(digits.train[:1], 300, axis=0))
  assert real['eval/feature_fd'] == pytest.approx(
      real['eval/feature_fd_floor'])
  assert collapsed['eval/feature_fd'] > 10 * real['eval/feature_fd']
  assert collapsed['eval/recall'] < 0.05 < real['eval/recall']
  # Real images sorted class-major, as generated labels are laid out.
  order = np.argsort(digits.held_out_labels, kind='stable')
  counts = np.bincount(digits.held_out_labels, minlength=10)
  n = 10 * counts.min()  # equal counts per class, class-major
  rows = np.concatenate([order[digits.held_out_labels[order] == c]
                         [:counts.min()] for c in range(10)])
  acc = metrics(digits.held_out[rows])['eval/class_accuracy']
  assert acc == pytest.approx(classifier.accuracy_of(
      net, digits.held_out[rows], digits.held_out_labels[rows]))
  assert acc > 0.5 and len(rows) == n


def test_the_evaluation_classifier_can_have_its_own_architecture():
  """`eval.classifier_channels`: the evaluation classifier's run gets its
  own stages, the classifier encoder's keeps `classifier.channels`; left
  empty, both share the stages (and differ by seed only)."""
  student = config_lib.load_config_file('configs/digits.py:runlocal')
  student.features.update(encoder='train', encoder_kind='classifier')
  student = methods.finalize(student)
  dataset = data_lib.for_run(student)
  shared = prerequisites.eval_classifier(student, dataset).run_config
  assert tuple(shared.classifier.channels) == tuple(
      student.classifier.channels)
  student.eval.classifier_channels = (8, 16, 16)
  own = prerequisites.eval_classifier(student, dataset).run_config
  encoder = prerequisites.with_run_config(
      methods.get('drifting').prerequisites(student)['encoder'],
      student).run_config
  assert tuple(own.classifier.channels) == (8, 16, 16)
  assert tuple(encoder.classifier.channels) == tuple(
      student.classifier.channels) != (8, 16, 16)
  assert own.classifier.seed != encoder.classifier.seed
