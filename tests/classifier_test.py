"""The image classifier (feature encoder and evaluation net) and the
image metrics the runner computes with it."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from drift_jax import classifier
from drift_jax import data as data_lib
from drift_jax import image_eval


@pytest.fixture(scope='module')
def digits():
  config = ml_collections.ConfigDict(dict(
      name='digits', path='', key='', held_out_fraction=0.2, image_size=8))
  return data_lib.make_dataset(config, eval_size=1000, seed=0)


@pytest.fixture(scope='module')
def trained(digits):
  config = ml_collections.ConfigDict(dict(channels=(8, 16), steps=300,
                                          batch_size=64, lr=3e-3))
  return classifier.train(
      digits.train, digits.labels, digits.held_out, digits.held_out_labels,
      image_shape=digits.image_shape, num_classes=digits.num_classes,
      channels=config.channels, steps=config.steps,
      batch_size=config.batch_size, lr=config.lr, seed=0), config


def test_classifier_learns_the_digits(digits, trained):
  """300 steps of a tiny net (8, 16 channels) reach ~77% held-out
  accuracy (the config's 32, 64 channels x 1,500 steps: ~98%); chance is
  10%, so > 50% fails for broken training or shuffled labels."""
  net, _ = trained
  assert digits.num_classes == 10
  assert net.meta['held_out_accuracy'] > 0.5
  assert net.meta['held_out_accuracy'] == pytest.approx(
      classifier.accuracy_of(net, digits.held_out, digits.held_out_labels))


def test_save_load_round_trip_and_mismatch_errors(tmp_path, digits, trained):
  net, config = trained
  classifier.save(net, str(tmp_path / 'clf'))
  loaded = classifier.load(str(tmp_path / 'clf'))
  x = jnp.asarray(digits.held_out[:7])
  np.testing.assert_array_equal(net.logits(net.params, x),
                                loaded.logits(loaded.params, x))
  # train_or_load reuses a finished directory instead of retraining.
  again = classifier.train_or_load(str(tmp_path / 'clf'), digits, config,
                                   seed=123)
  assert again.meta == net.meta
  with pytest.raises(FileNotFoundError, match='classifier.json'):
    classifier.load(str(tmp_path / 'missing'))
  other = digits.__class__(**{**digits.__dict__,
                              'image_shape': (16, 16, 1)})
  with pytest.raises(ValueError, match=r'is for images \(8, 8, 1\)'):
    classifier.check_matches(loaded, other, 'clf')


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
