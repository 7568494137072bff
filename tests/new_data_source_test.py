"""A data source is one function plus one `data.SOURCES` line: its own
`data.*` options join the `data` config section, the config check knows
its name, and `make_dataset` builds it (the example: points uniform in a
square of side `data.square_side`)."""

import jax
import numpy as np
import pytest

from drift_jax import methods
from drift_jax.data import datasets


def _uniform_square(data_config, *, eval_key, eval_size, seed, split):
  del seed, split
  side = data_config.square_side

  def sampler(key, n):
    return side * jax.random.uniform(key, (n, 2))
  return datasets._synthetic_dataset(data_config.name, sampler, None,
                                     eval_key, eval_size)


@pytest.fixture
def registered(monkeypatch):
  monkeypatch.setitem(datasets.SOURCES, 'square', datasets.Source(
      _uniform_square, {'square_side': 3.0}))


def test_the_section_is_the_union_of_the_sources_options(registered):
  section = datasets.config_section()
  assert section['square_side'] == 3.0
  assert section['dim'] == 2 and section['image_size'] == 8  # gmm, images
  assert set(datasets.SHARED_OPTIONS) <= set(section)


def test_a_new_source_builds_and_validates(registered):
  c = methods.base_config()
  c.data = datasets.config_section()
  c.data.name = 'square'
  methods.validate(c, 1)
  dataset = datasets.for_run(c)
  assert dataset.held_out.shape == (c.eval.num_samples, 2)
  assert 0 <= dataset.held_out.min() and dataset.held_out.max() <= 3.0
  assert dataset.held_out.max() > 2.5  # the option reached the sampler
  c.data.name = 'squar'
  with pytest.raises(ValueError, match='data.name'):
    methods.validate(c, 1)


def test_sources_that_disagree_on_a_default_are_refused(monkeypatch):
  monkeypatch.setitem(datasets.SOURCES, 'odd', datasets.Source(
      _uniform_square, {'image_size': 16}))
  with pytest.raises(ValueError, match='image_size'):
    datasets.config_section()


def test_every_builtin_name_still_builds():
  """The registry replaced an if-chain: each synthetic source draws."""
  c = methods.base_config()
  for name in ('checkerboard', 'gmm', 'eight_gaussians'):
    c.data.name = name
    dataset = datasets.make_dataset(c.data, eval_size=64, seed=0)
    assert np.isfinite(dataset.held_out).all(), name
