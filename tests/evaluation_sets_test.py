"""Validation vs test sets (`eval.split`, `data.validation_fraction`),
floors averaged over draws (`eval.floor_draws`) and the step calibration
(`runner.seconds_per_step`): what the comparison harness stands on."""

import math

import numpy as np
import pytest

from drift_jax import methods
from drift_jax.data import datasets as data_lib
from drift_jax.evaluators import distances
from drift_jax.evaluators import sample_metrics as metrics_lib
from drift_jax.train import runner
from tests.runner_helpers import tiny_config


def _rows(points):
  return {tuple(np.round(p, 6)) for p in points}


def test_validation_split_is_disjoint_from_test_and_training(tmp_path):
  np.save(tmp_path / 'cloud.npy',
          np.random.default_rng(0).normal(size=(400, 2)).astype(np.float32))
  c = tiny_config(dataset='file')
  c.data.update(path=str(tmp_path / 'cloud.npy'), validation_fraction=0.1)
  c.eval.seed = 3
  test = data_lib.for_run(c)
  c.eval.split = 'validation'
  val = data_lib.for_run(c)
  assert (len(test.held_out), len(val.held_out)) == (80, 40)
  assert not _rows(val.held_out) & _rows(test.held_out)
  assert not _rows(val.held_out) & _rows(test.train)
  np.testing.assert_array_equal(val.train, test.train)  # split-independent
  # Adding a validation split leaves the test rows as they were.
  c.data.validation_fraction, c.eval.split = 0.0, 'test'
  np.testing.assert_array_equal(data_lib.for_run(c).held_out, test.held_out)
  c.eval.split = 'validation'
  with pytest.raises(ValueError, match='data.validation_fraction'):
    data_lib.for_run(c)


def test_synthetic_validation_sets_are_independent_draws():
  c = tiny_config(dataset='checkerboard')
  c.eval.seed = 3
  test = data_lib.for_run(c)
  c.eval.split = 'validation'
  val = data_lib.for_run(c)
  assert val.held_out.shape == test.held_out.shape
  assert not _rows(val.held_out) & _rows(test.held_out)
  assert not _rows(val.floor_reference) & _rows(test.floor_reference)


def test_floor_averages_independent_draws():
  c = methods.finalize(tiny_config(dataset='checkerboard'))
  c.eval.update(seed=5, floor_draws=4)
  dataset = data_lib.for_run(c)
  refs = [dataset.floor_reference] + data_lib.independent_draws(
      dataset, 3, 5, distances.FLOOR_SALT)
  expected = np.mean([float(metrics_lib.energy_distance(r, dataset.held_out))
                      for r in refs])
  floors = runner.Scorer(dataset, c).floors
  assert floors['eval/energy_distance_floor'] == pytest.approx(expected,
                                                               rel=1e-12)
  # Each draw is a new sample, none is the held-out set.
  assert len({float(np.sum(r)) for r in refs}) == 4
  c.eval.floor_draws = 1  # one draw: the floor of before
  one = runner.Scorer(dataset, c).floors['eval/energy_distance_floor']
  assert one == pytest.approx(float(metrics_lib.energy_distance(
      dataset.floor_reference, dataset.held_out)), rel=1e-12)


def test_cached_bandwidths_are_the_held_out_sets_own(monkeypatch):
  """The per-process caches of fixed sets (a suite's runs share them)
  return what a fresh evaluator computes, per split."""
  c = methods.finalize(tiny_config(dataset='checkerboard'))
  c.data.validation_fraction = 0.2
  c.eval.update(seed=5, floor_draws=2)
  monkeypatch.setattr(distances, '_BANDWIDTH_CACHE', {})
  monkeypatch.setattr(distances, '_FLOOR_CACHE', {})
  made = {}
  for split in ('test', 'validation', 'test'):  # the second test: cached
    c.eval.split = split
    dataset = data_lib.for_run(c)
    median = float(metrics_lib.median_distance(dataset.held_out))
    expected = tuple(f * median for f in metrics_lib.MMD_BANDWIDTH_FACTORS)
    made[split] = distances.Distances(dataset, c), dataset
    assert made[split][0]._bandwidths == expected, split
  assert len(distances._BANDWIDTH_CACHE) == 2
  monkeypatch.setattr(distances, '_BANDWIDTH_CACHE', {})
  monkeypatch.setattr(distances, '_FLOOR_CACHE', {})
  for split, (cached, dataset) in made.items():
    c.eval.split = split
    fresh = distances.Distances(dataset, c)
    assert fresh.floors == cached.floors
    assert fresh(dataset.floor_reference) == cached(dataset.floor_reference)


@pytest.mark.parametrize('key, value', [('eval.split', 'train'),
                                        ('eval.floor_draws', 0),
                                        ('data.validation_fraction', 0.6)])
def test_bad_evaluation_keys_name_themselves(key, value):
  c = tiny_config()
  section, name = key.split('.')
  c[section][name] = value
  with pytest.raises(ValueError, match=key.replace('.', r'\.')):
    methods.validate(c, device_count=1)


def test_seconds_per_step_times_the_runner_step(tmp_path):
  c = tiny_config()
  seconds = runner.seconds_per_step(c, str(tmp_path), min_seconds=0.05,
                                    repeats=2)
  assert math.isfinite(seconds) and 0 < seconds < 5
