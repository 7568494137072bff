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


def test_dmd_step_flops_grow_linearly_with_the_batch():
  """DMD2's step (`cost.dmd_step_cost`) at smoke size: per-image FLOPs
  at 4 and 8 images agree within 5 % (every loss term is per image; the
  projection scales them by the batch)."""
  # One level (no resampling), attention at it: the smallest ADM that has
  # every kind of layer but the resamplers (the step compiles four times).
  adm = dict(adm_channels=8, adm_mults=(1,), adm_blocks=1,
             adm_attention=(8,), adm_head_channels=8)
  small = cost.dmd_step_cost('float32', 4, image_shape=(8, 8, 1),
                             num_classes=10, adm=adm)
  large = cost.dmd_step_cost('float32', 8, image_shape=(8, 8, 1),
                             num_classes=10, adm=adm)
  assert small['params'] == large['params'] > 0
  assert math.isclose(large['flops'] / 8, small['flops'] / 4, rel_tol=0.05)
