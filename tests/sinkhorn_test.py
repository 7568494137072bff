"""Sinkhorn drifting: its couplings meet both marginals and agree with an
independent Sinkhorn (OTT-JAX) on the same cost and regulariser, in
float64; the field is the cross-minus-self barycentric displacement;
blocked equals dense; bad settings name their key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from drift_jax import fields
from drift_jax import methods
from drift_jax.fields import kernels
from drift_jax.train import runner

TAU = 0.5


def _sets(dim=2):
  x = jax.random.normal(jax.random.key(0), (20, dim))
  pos = jax.random.normal(jax.random.key(1), (26, dim)) * 0.7 + 0.5
  return x, pos


def _spec(kernel='laplace', **kwargs):
  kwargs.setdefault('sinkhorn_iterations', 5000)
  kwargs.setdefault('sinkhorn_tolerance', 1e-13)
  return fields.FieldSpec(kernel=kernel, temperatures=(TAU,),
                          normalization='sinkhorn', **kwargs)


def _ott_coupling(x, y, kernel, mask_self):
  """OTT's Sinkhorn on cost -log k (epsilon 1), uniform marginals."""
  cost = -kernels.get_kernel(kernel)(
      jnp.sum((x[:, None] - y[None])**2, -1), TAU)
  if mask_self:  # the excluded self pairs: cost +1e6, a kernel of exp(-1e6)
    cost = cost + 1e6 * jnp.eye(x.shape[0], y.shape[0])
  a = jnp.full(x.shape[0], 1.0 / x.shape[0])
  b = jnp.full(y.shape[0], 1.0 / y.shape[0])
  out = ott_sinkhorn.Sinkhorn(threshold=1e-13, max_iterations=20000)(
      linear_problem.LinearProblem(geometry.Geometry(cost_matrix=cost,
                                                     epsilon=1.0), a, b))
  return out.matrix


@pytest.mark.parametrize('kernel', ['laplace', 'gaussian'])
def test_couplings_meet_both_marginals_and_match_ott(x64, kernel):
  x, pos = _sets()
  plan_pos, plan_neg = fields.sinkhorn_couplings(_spec(kernel), x, pos, x)
  for plan, cols in ((plan_pos, pos.shape[0]), (plan_neg, x.shape[0])):
    np.testing.assert_allclose(plan.sum(1), 1.0 / x.shape[0], atol=1e-10)
    np.testing.assert_allclose(plan.sum(0), 1.0 / cols, atol=1e-10)
  assert float(jnp.max(jnp.abs(jnp.diag(plan_neg)))) == 0.0  # self-masked
  np.testing.assert_allclose(plan_pos, _ott_coupling(x, pos, kernel, False),
                             atol=1e-9)
  np.testing.assert_allclose(plan_neg, _ott_coupling(x, x, kernel, True),
                             atol=1e-9)


def test_field_is_cross_minus_self_barycentre(x64):
  x, pos = _sets()
  spec = _spec()
  plan_pos, plan_neg = fields.sinkhorn_couplings(spec, x, pos, x)
  bary = lambda plan, y: (plan @ y) / plan.sum(1, keepdims=True)
  want = bary(plan_pos, pos) - bary(plan_neg, x)
  np.testing.assert_allclose(spec(x, pos, x), want, rtol=1e-9, atol=1e-12)
  # Against OTT's couplings too (an independent solver end to end).
  want_ott = (bary(_ott_coupling(x, pos, 'laplace', False), pos)
              - bary(_ott_coupling(x, x, 'laplace', True), x))
  np.testing.assert_allclose(spec(x, pos, x), want_ott, atol=1e-8)


def test_couplings_follow_normalised_distances(x64):
  """With distances divided by their batch mean, the couplings are still
  the ones behind the field."""
  x, pos = _sets()
  spec = _spec(normalize_distances=True)
  plan_pos, plan_neg = fields.sinkhorn_couplings(spec, x, pos, x)
  bary = lambda plan, y: (plan @ y) / plan.sum(1, keepdims=True)
  np.testing.assert_allclose(spec(x, pos, x),
                             bary(plan_pos, pos) - bary(plan_neg, x),
                             rtol=1e-9, atol=1e-12)


def test_one_sided_couplings_are_not_sinkhorn(x64):
  """The relation to Alg. 2: its affinities are one symmetric half step of
  this scaling (module docstring), so their marginals are off; Sinkhorn's
  iterations bring them to the target (the error falls by orders of
  magnitude), which is what makes zero drift imply a match."""
  x, pos = _sets()

  def row_error(iterations):
    plan, _ = fields.sinkhorn_couplings(
        _spec(sinkhorn_iterations=iterations, sinkhorn_tolerance=None), x,
        pos, x)
    return float(jnp.max(jnp.abs(plan.sum(1) * x.shape[0] - 1.0)))
  assert row_error(1) > 1e-2
  assert row_error(200) < 1e-3 * row_error(1)


def test_tolerance_stops_early_and_blocked_equals_dense():
  x, pos = _sets()
  loose = _spec(sinkhorn_iterations=500, sinkhorn_tolerance=1e-3)
  tight = _spec(sinkhorn_iterations=500, sinkhorn_tolerance=1e-6)
  v_loose, v_tight = loose(x, pos, x), tight(x, pos, x)
  assert 0 < float(jnp.max(jnp.abs(v_loose - v_tight))) < 1e-2
  for spec in (loose, tight):
    blocked = fields.FieldSpec(**{**spec.__dict__, 'block_size': 8})
    np.testing.assert_allclose(blocked(x, pos, x), spec(x, pos, x),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('kwargs, match', [
    (dict(sinkhorn_iterations=0), '`sinkhorn_iterations` must be'),
    (dict(sinkhorn_iterations=2.5), '`sinkhorn_iterations` must be'),
    # 0 (like None) is the empty value: every iteration runs.
    (dict(sinkhorn_tolerance=float('nan')), '`sinkhorn_tolerance` must be'),
    (dict(sinkhorn_tolerance=-1e-3), '`sinkhorn_tolerance` must be'),
])
def test_bad_sinkhorn_settings_name_the_key(kwargs, match):
  with pytest.raises(ValueError, match=match):
    fields.FieldSpec(normalization='sinkhorn', **kwargs)


def test_sinkhorn_drifting_trains_through_the_runner(tmp_path):
  c = methods.base_config()
  methods.runlocal(c)
  c.eval.plot = False
  c.field.update(normalization='sinkhorn', temperatures=(0.05, 0.2),
                 normalize_distances=True, normalize_drift=True,
                 sinkhorn_iterations=10)
  summary = runner.train_and_evaluate(c, str(tmp_path))
  assert summary['step'] == c.train.steps
  assert np.isfinite(summary['train/loss'])
  c.field.sinkhorn_iterations = 0
  with pytest.raises(ValueError, match='sinkhorn_iterations'):
    methods.validate(c, 1)
