"""The cost projection (`experiments.benchmarks.cost`): its arithmetic, and
the assumption it rests on, that a compiled step's FLOPs grow linearly with
the per-device batch."""

import math

import pytest

from experiments.benchmarks import cost


def test_projection_arithmetic():
  # 1 GFLOP a sample, 4,096 a step on one chip at half of 1 TFLOP/s.
  seconds, days = cost.projection(1e9, 1, 1.0, 0.5, epochs=2)
  assert seconds == pytest.approx(1e9 * 4096 / 0.5e12)
  steps = 2 * cost.IMAGENET_IMAGES / cost.GLOBAL_BATCH
  assert days == pytest.approx(seconds * steps / 86400)
  # Eight chips share the batch: an eighth of the time.
  assert cost.projection(1e9, 8, 1.0, 0.5, 2)[0] == pytest.approx(
      seconds / 8)


def test_step_flops_grow_linearly_with_the_batch():
  """A tiny DiT on the latent shape: the step's FLOPs per sample at 8 and
  16 samples agree within 5 % (the field's pairwise terms, quadratic in
  the batch, are a small share; the generator's passes are linear), and
  the parameter count is the network's."""
  small = cost.step_cost('tiny/2', 'float32', 8)
  large = cost.step_cost('tiny/2', 'float32', 16)
  assert small['params'] == large['params'] > 0
  assert math.isclose(large['flops'] / 16, small['flops'] / 8, rel_tol=0.05)
  # (The MAE-feature step is left to the benchmark: its many feature keys
  # take ~50 s to compile even at width 4.)


def test_dmd_projection_arithmetic():
  """DMD2's projection (`projection_for`): 280 images a step over 7 chips
  at 40 % of a 1 TFLOP/s peak, 1 GFLOP an image, for 200k steps. (The
  step's FLOPs come from `dmd_step_cost`, compiled by the benchmark: its
  tracing alone takes ~20 s at the smallest size, too long for a test.)"""
  seconds, days = cost.projection_for(1e9, cost.DMD2_BATCH, cost.DMD2_STEPS,
                                      7, 1.0, 0.4)
  assert seconds == pytest.approx(1e9 * 280 / 7 / 0.4e12)
  assert days == pytest.approx(seconds * 200_000 / 86400)
