"""The conservative drifting fields against independent paths, in float64:
jax.grad of a log-sum-exp KDE (kernel gradient, every kernel), of the MMD
witness, and the Laplace companion score (`scores.companion_score`); the
Gaussian kernel gradient is the `nw` field over tau^2; the conservative
fields have symmetric Jacobians where the Laplace `nw` and bidirectional
fields do not; blocked equals dense; each vanishes as both sample sets
grow from one distribution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import fields
from drift_jax import methods
from drift_jax.fields import kernels
from drift_jax.theory import scores
from drift_jax.train import runner

CONSERVATIVE = ('kernel_gradient', 'sharp_companion', 'mmd')
TAU = 0.7


def _sets(n=24, m=31, dim=3, seed=0):
  k = jax.random.split(jax.random.key(seed), 3)
  x = jax.random.normal(k[0], (n, dim))
  pos = jax.random.normal(k[1], (m, dim)) * 0.8 + 0.3
  w = jax.random.uniform(k[2], (m,), minval=0.5, maxval=2.0)
  return x, pos, w


def _log_kde(point, samples, kernel, tau, weights):
  """log sum_j w_j k(point, y_j) (an independent, autodiff-able path)."""
  sq = jnp.sum((point[None] - samples)**2, -1)
  return jax.nn.logsumexp(kernels.get_kernel(kernel)(sq, tau)
                          + jnp.log(weights))


def _leave_one_out(fn, x):
  """[fn(x_i, x without row i)] over i."""
  n = x.shape[0]
  return jnp.stack([fn(x[i], jnp.delete(x, i, axis=0)) for i in range(n)])


@pytest.mark.parametrize('kernel', list(kernels.KERNELS))
def test_kernel_gradient_is_the_gradient_of_log_kdes(x64, kernel):
  x, pos, w = _sets()
  got = fields.drifting_field(x, pos, x, kernel=kernel, temperature=TAU,
                              normalization='kernel_gradient',
                              pos_weights=w)
  grad = jax.grad(_log_kde)
  want = (jax.vmap(lambda p: grad(p, pos, kernel, TAU, w))(x)
          - _leave_one_out(lambda p, rest: grad(
              p, rest, kernel, TAU, jnp.ones(rest.shape[0])), x))
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_gaussian_kernel_gradient_times_tau2_is_the_nw_field(x64):
  x, pos, _ = _sets()
  kg = fields.drifting_field(x, pos, x, kernel='gaussian', temperature=TAU,
                             normalization='kernel_gradient')
  nw = fields.drifting_field(x, pos, x, kernel='gaussian', temperature=TAU,
                             normalization='nw')
  np.testing.assert_allclose(TAU**2 * kg, nw, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('kernel', list(kernels.KERNELS))
def test_mmd_field_is_the_gradient_of_the_witness(x64, kernel):
  x, pos, w = _sets()
  k = kernels.get_kernel(kernel)

  def mean_k(point, samples, weights):
    sq = jnp.sum((point[None] - samples)**2, -1)
    return jnp.sum(weights * jnp.exp(k(sq, TAU))) / jnp.sum(weights)

  grad = jax.grad(mean_k)
  want = (jax.vmap(lambda p: grad(p, pos, w))(x)
          - _leave_one_out(lambda p, rest: grad(p, rest,
                                                jnp.ones(rest.shape[0])), x))
  got = fields.drifting_field(x, pos, x, kernel=kernel, temperature=TAU,
                              normalization='mmd', pos_weights=w)
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_sharp_companion_is_the_companion_score_difference(x64):
  x, pos, _ = _sets()
  got = fields.drifting_field(x, pos, x, kernel='laplace', temperature=TAU,
                              normalization='sharp_companion')
  score_p, lam_p = scores.companion_score(x, pos, TAU)
  score_q, lam_q = scores.companion_score(x, x, TAU, exclude_self=True)
  np.testing.assert_allclose(got, score_p - score_q, rtol=1e-10,
                             atol=1e-12)
  # ... and the score part of the Laplace decomposition is lbar times it.
  score_part, _ = scores.laplace_decomposition(x, pos, x, TAU,
                                               mask_self=True)
  lbar = 0.5 * (lam_p + lam_q)[:, None]
  np.testing.assert_allclose(score_part, lbar * got, rtol=1e-9, atol=1e-12)


def _jacobian_asymmetry(normalization, kernel, x, pos, neg):
  """max |J - J^T| / max |J| of V at each query (central differences;
  negatives fixed, no self-mask), the worst over queries."""
  def v(points):
    return fields.drifting_field(points, pos, neg, kernel=kernel,
                                 temperature=TAU, mask_self=False,
                                 normalization=normalization)
  h, dim = 1e-5, x.shape[1]
  cols = [(v(x + h * e) - v(x - h * e)) / (2 * h) for e in jnp.eye(dim)]
  jac = jnp.stack(cols, axis=-1)  # [N, D, D]
  asym = jnp.abs(jac - jnp.swapaxes(jac, 1, 2)).max(axis=(1, 2))
  return float(jnp.max(asym / jnp.abs(jac).max(axis=(1, 2))))


def test_conservative_fields_have_symmetric_jacobians(x64):
  x, pos, _ = _sets(n=8, dim=2)
  neg = jax.random.normal(jax.random.key(9), (20, 2)) - 0.4
  for normalization in CONSERVATIVE:
    for kernel in (('laplace',) if normalization == 'sharp_companion'
                   else kernels.KERNELS):
      assert _jacobian_asymmetry(normalization, kernel, x, pos, neg) < 1e-7
  # The Laplace `nw` and bidirectional fields measurably are not gradients.
  for normalization in ('nw', 'bidirectional'):
    assert _jacobian_asymmetry(normalization, 'laplace', x, pos, neg) > 1e-2


@pytest.mark.parametrize('normalization', CONSERVATIVE + ('sinkhorn',))
def test_blocked_equals_dense_with_normalisations(normalization):
  x, pos, w = _sets(n=50, m=70, dim=2)
  kwargs = dict(normalization=normalization, temperature=(0.2, 0.7),
                normalize_distances=True, normalize_drift=True,
                pos_weights=w)
  dense = fields.drifting_field(x, pos, x, block_size=50, **kwargs)
  blocked = fields.drifting_field(x, pos, x, block_size=8, **kwargs)
  # float32, unit-RMS fields: 1e-5 is tens of ulp of accumulated rounding.
  np.testing.assert_allclose(blocked, dense, rtol=1e-5, atol=1e-5)
  batched = jax.vmap(lambda a, b: fields.drifting_field(a, b, a, **kwargs))(
      jnp.stack([x, x + 1.0]), jnp.stack([pos, pos + 1.0]))
  np.testing.assert_allclose(batched[0], dense, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('normalization', CONSERVATIVE + ('sinkhorn',))
def test_fields_vanish_as_both_sets_grow_from_one_distribution(
    normalization):
  def mean_norm(n):
    k = jax.random.split(jax.random.key(n), 2)
    x = jax.random.normal(k[0], (n, 2))
    pos = jax.random.normal(k[1], (n, 2))
    v = fields.drifting_field(x, pos, x, normalization=normalization,
                              temperature=0.5)
    return float(jnp.mean(jnp.linalg.norm(v, axis=-1)))
  # Sampling noise ~ 1 / sqrt(n): 16x the samples, about a quarter the
  # field; half leaves room for the estimator's constants.
  assert mean_norm(4096) < 0.5 * mean_norm(256)


def test_bad_choices_name_the_argument():
  x = jnp.ones((4, 2))
  with pytest.raises(ValueError, match='needs the Laplace `kernel`'):
    fields.drifting_field(x, x, x, kernel='gaussian',
                          normalization='sharp_companion')
  with pytest.raises(ValueError, match='Unknown `normalization`'):
    fields.drifting_field(x, x, x, normalization='kernel_gradients')


@pytest.mark.parametrize('normalization', CONSERVATIVE)
def test_each_field_trains_through_the_runner(tmp_path, normalization):
  c = methods.base_config()
  methods.runlocal(c)
  c.eval.plot = False
  c.field.normalization = normalization
  c.field.temperatures = (0.05, 0.2)
  c.field.normalize_distances = c.field.normalize_drift = True
  summary = runner.train_and_evaluate(c, str(tmp_path))
  assert summary['step'] == c.train.steps
  assert np.isfinite(summary['train/loss'])
  assert np.isfinite(summary['eval/energy_distance'])


@pytest.mark.parametrize('normalization', CONSERVATIVE)
def test_normalised_distances_are_the_field_in_scaled_coordinates(
    x64, normalization):
  """With distances divided by their batch mean S the kernels depend on
  x / S, so V(x) = (1 / S) V_raw(x / S) by the chain rule."""
  x, pos, w = _sets()
  targets, weights = jnp.concatenate([pos, x]), jnp.concatenate(
      [w, jnp.ones(x.shape[0])])
  d = jnp.sqrt(jnp.sum((x[:, None] - targets[None])**2, -1))
  s = jnp.sum(d * weights) / (x.shape[0] * jnp.sum(weights))
  kwargs = dict(kernel='laplace', temperature=TAU,
                normalization=normalization)
  got = fields.drifting_field(x, pos, x, normalize_distances=True,
                              pos_weights=w, **kwargs)
  want = fields.drifting_field(x / s, pos / s, x / s, pos_weights=w,
                               **kwargs) / s
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
