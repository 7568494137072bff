"""The suite runs on the fake CPU devices it asks for."""

import os

import jax


def test_fake_cpu_device_count():
  assert jax.device_count() == int(os.environ['JAX_NUM_CPU_DEVICES'])
