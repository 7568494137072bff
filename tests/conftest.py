"""Test setup: 8 fake CPU devices unless the caller chose otherwise."""

import os

# Must happen before JAX initialises its backends (README runs the suite with
# JAX_NUM_CPU_DEVICES=8; this default keeps a bare `pytest` equivalent).
os.environ.setdefault('JAX_NUM_CPU_DEVICES', '8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def x64():
  """Runs a test with float64 enabled (identity checks to round-off)."""
  with jax.enable_x64(True):
    yield
