"""Every sweep file loads and every one of its points makes a valid config."""

import pathlib

import pytest

from drift_jax import methods
from drift_jax.studies import sweep as ablate

SWEEPS = sorted((pathlib.Path(__file__).parent.parent / 'sweeps').glob('*.py'))


@pytest.mark.parametrize('path', SWEEPS, ids=lambda p: p.name)
def test_sweep_points_are_valid_configs(path):
  sweep = ablate.load_sweep(str(path))
  points = ablate.points(sweep)
  assert len(points) == len({name for name, _, _ in points}) >= 1
  for _, _, overrides in points:
    config = ablate.make_config(sweep, overrides, seed=0)
    methods.validate(config, device_count=1)
