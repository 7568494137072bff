"""Every distance and kernel-weighted average asks for full float32
precision, whatever the backend's default (GPUs default to TF32, TPUs to
bfloat16 passes). On a CPU the setting changes no number, so the lowered
program is what a test can see: every dot_general of the field carries
`precision = [HIGHEST, HIGHEST]`, and so does every dot of the training
step that touches the field's targets."""

import re

import jax
import jax.numpy as jnp
import pytest

from drift_jax import fields
from drift_jax import methods
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from drift_jax.theory import scores

DOT = re.compile(r'stablehlo\.dot_general .*precision = \[(\w+), (\w+)\]'
                 r' : \((tensor<[^>]*>), (tensor<[^>]*>)\)')


def _dots(fn, *args):
  """[(precision, lhs type, rhs type)] of every dot in fn's program."""
  text = jax.jit(fn).lower(*args).as_text()
  found = DOT.findall(text)
  assert text.count('stablehlo.dot_general') == len(found)
  return [(a, lhs, rhs) for a, b, lhs, rhs in found if a == b] + [
      ('MIXED', lhs, rhs) for a, b, lhs, rhs in found if a != b]


@pytest.mark.parametrize('normalization', list(fields.NORMALIZATIONS))
@pytest.mark.parametrize('dim', [2, 16])  # direct differences / matmul
@pytest.mark.parametrize('block_size', [None, 8])  # dense / blocked
def test_field_dots_are_highest_precision(normalization, dim, block_size):
  x = jax.random.normal(jax.random.key(0), (24, dim))
  pos = jax.random.normal(jax.random.key(1), (40, dim))
  field = lambda x, pos: fields.drifting_field(
      x, pos, x, normalization=normalization, block_size=block_size,
      temperature=(0.05, 0.2), normalize_distances=True)
  dots = _dots(field, x, pos)
  assert dots, 'the field computes its averages with matmuls'
  assert {p for p, _, _ in dots} == {'HIGHEST'}, dots


def test_the_precision_knob_reaches_every_dot():
  x, pos = jnp.ones((24, 16)), jnp.ones((40, 16))
  dots = _dots(lambda x, p: fields.drifting_field(x, p, x,
                                                  precision='default'),
               x, pos)
  assert dots and {p for p, _, _ in dots} == {'DEFAULT'}
  with pytest.raises(ValueError, match='precision'):
    fields.drifting_field(x, pos, x, precision='tf32')


def test_kde_denoiser_and_mean_shift_are_highest_precision():
  x, y = jnp.ones((24, 16)), jnp.ones((40, 16))
  for fn in (lambda x, y: scores.kde_denoiser(x, y, 0.3),
             lambda x, y: fields.mean_shift(x, y, temperature=0.3)):
    dots = _dots(fn, x, y)
    assert dots and {p for p, _, _ in dots} == {'HIGHEST'}


def test_training_step_field_dots_are_highest_precision():
  """The drifting step: 56 generated and 72 data samples in 16 dimensions,
  so that the field's dots (distances [56, 16] x [16, 128], averages
  [56, 128] x [128, 16]) are the ones with a 128-long axis; the
  generator's own dots keep the default precision."""
  c = methods.base_config()
  methods.runlocal(c)
  c.train.update(batch_size=72, gen_batch_size=56)
  c.field.temperatures = (0.02, 0.05, 0.2)
  c.field.normalize_distances = c.field.normalize_drift = True
  method = methods.get('drifting').make(
      c, RunContext(dim=16, mesh=parallel.make_mesh(1)))
  state = method.init(jax.random.key(0))
  batch = jnp.ones((72, 16))
  dots = _dots(lambda s, b, k: method.train_step(s, (), b, k), state, batch,
               jax.random.key(1))
  targets = [d for d in dots if '128' in d[1] or '128' in d[2]]
  assert len(targets) >= 4, dots  # distances and averages, 3 temperatures
  assert {p for p, _, _ in targets} == {'HIGHEST'}, targets
  assert {p for p, _, _ in dots} == {'HIGHEST', 'DEFAULT'}  # the MLP's
