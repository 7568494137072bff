"""Drifting fields against exact references (Tweedie, Algorithm 2, App. A.6)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import fields
from drift_jax import methods
from drift_jax.methods import drifting
from drift_jax.theory import distributions
from tests import references

NORMS = fields.NORMALIZATIONS


def _rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.max(np.abs(a - b)) / np.max(np.abs(b))


def _normal(seed, shape, shift=0.0, dtype=jnp.float32):
  return jax.random.normal(jax.random.PRNGKey(seed), shape, dtype) + shift


def _log_kde(x, samples, sigma):
  """log sum_j N(x; y_j, sigma^2 I) up to a constant, for one query x [D]."""
  sq = jnp.sum((x[None, :] - samples)**2, axis=-1)
  return jax.nn.logsumexp(-sq / (2 * sigma**2))


# ------------------------------------------------------- Gaussian (Tweedie)


@pytest.mark.parametrize('dim', [2, 5, 64])
@pytest.mark.parametrize('mask_self', [False, True])
def test_gaussian_nw_field_is_scaled_kde_score_difference(x64, dim,
                                                          mask_self):
  # float64: the identity is exact, so only round-off (~1e-15) remains; 1e-9
  # leaves room for the logsumexp and autodiff paths differing in order.
  tau = 0.6 * np.sqrt(dim)  # keeps the softmax weights spread (not one-hot)
  x = _normal(0, (30, dim), dtype=jnp.float64)
  pos = _normal(1, (40, dim), 0.7, jnp.float64)
  neg = x if mask_self else _normal(2, (35, dim), -0.3, jnp.float64)
  v = fields.drifting_field(x, pos, neg, kernel='gaussian', temperature=tau,
                            normalization='nw', mask_self=mask_self)
  grad_log = jax.vmap(jax.grad(_log_kde), in_axes=(0, None, None))
  score_p = grad_log(x, pos, tau)
  if mask_self:  # leave-one-out KDE of q at each x_i
    def loo(i):
      keep = jnp.arange(x.shape[0]) != i
      logits = jnp.where(keep, 0.0, -jnp.inf)
      f = lambda z: jax.nn.logsumexp(
          -jnp.sum((z - neg)**2, -1) / (2 * tau**2) + logits)
      return jax.grad(f)(x[i])
    score_q = jax.vmap(loo)(jnp.arange(x.shape[0]))
  else:
    score_q = grad_log(x, neg, tau)
  expected = tau**2 * (score_p - score_q)
  assert v.dtype == jnp.float64
  assert _rel_err(v, expected) <= 1e-9


def test_gaussian_field_population_error_shrinks_with_n(x64):
  # p = ring of 8 Gaussians, q = a wider, shifted ring; the population field
  # is tau^2 (score of p_tau - score of q_tau), exact from the mixtures.
  p = distributions.eight_gaussians(radius=1.0, std=0.15)
  q = distributions.eight_gaussians(radius=0.7, std=0.3)
  q = distributions.GaussianMixture(q.means + 0.2, q.covs, q.weights)
  tau = 0.3
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (64, 2)))
  exact = tau**2 * (p.score(x, sigma=tau) - q.score(x, sigma=tau))

  def error(n):
    errs = []
    for seed in range(4):
      kp, kq = jax.random.split(jax.random.PRNGKey(seed))
      pos, neg = p.sample(kp, n), q.sample(kq, n)
      v = fields.drifting_field(x, pos, neg, kernel='gaussian',
                                temperature=tau, normalization='nw',
                                mask_self=False)
      errs.append(jnp.sqrt(jnp.mean(jnp.sum((v - exact)**2, -1))))
    return float(np.mean(errs))

  small, large = error(256), error(16 * 256)
  # Monte-Carlo error ~ 1/sqrt(n): 16x the samples should give ~4x smaller
  # error; ask for 2x to stay robust to the 4-seed average's own noise.
  assert large < small / 2, (small, large)


# ------------------------------------------------- Algorithm 2 algebra (T4)


def _kernel_sums(x, pos, neg, tau, kernel):
  logk_p = kernel_fn(kernel, x, pos, tau)
  logk_n = kernel_fn(kernel, x, neg, tau)
  logk_n = jnp.where(jnp.eye(x.shape[0], dtype=bool), -jnp.inf, logk_n)
  return (jnp.exp(jax.nn.logsumexp(logk_p, -1)),
          jnp.exp(jax.nn.logsumexp(logk_n, -1)))


def kernel_fn(kernel, x, y, tau):
  r = jnp.sqrt(jnp.sum((x[:, None] - y[None])**2, -1))
  return -r / tau if kernel == 'laplace' else -r**2 / (2 * tau**2)


@pytest.mark.parametrize('kernel', ['laplace', 'gaussian'])
def test_row_equals_c_times_nw(x64, kernel):
  x = _normal(0, (25, 3), dtype=jnp.float64)
  pos = _normal(1, (30, 3), 0.5, jnp.float64)
  kw = dict(kernel=kernel, temperature=0.8, mask_self=True)
  nw = fields.drifting_field(x, pos, x, normalization='nw', **kw)
  row = fields.drifting_field(x, pos, x, normalization='row', **kw)
  p_sum, q_sum = _kernel_sums(x, pos, x, 0.8, kernel)
  c = p_sum * q_sum / (p_sum + q_sum)**2
  assert _rel_err(row, c[:, None] * nw) <= 1e-12


@pytest.mark.parametrize('normalization', NORMS)
def test_swapping_p_and_q_negates_the_field(x64, normalization):
  x = _normal(0, (20, 3), dtype=jnp.float64)
  a = _normal(1, (24, 3), 0.5, jnp.float64)
  b = _normal(2, (24, 3), -0.5, jnp.float64)
  kw = dict(temperature=0.5, normalization=normalization, mask_self=False)
  v_ab = fields.drifting_field(x, a, b, **kw)
  v_ba = fields.drifting_field(x, b, a, **kw)
  assert _rel_err(-v_ba, v_ab) <= 1e-12


@pytest.mark.parametrize('normalization', NORMS)
def test_field_vanishes_as_n_grows_when_p_equals_q(normalization):
  # Deng's setting: the generated batch is both queries and (self-masked)
  # negatives, so N grows with the positives.
  def rms(n):
    vals = []
    for seed in range(3):
      pos = _normal(100 + seed, (n, 2))
      x = _normal(200 + seed, (n, 2))
      v = fields.drifting_field(x, pos, x, temperature=0.5,
                                normalization=normalization, mask_self=True)
      vals.append(jnp.sqrt(jnp.mean(v**2)))
    return float(np.mean(vals))

  # Monte-Carlo error ~ 1/sqrt(n): 16x n should shrink it ~4x; require 2x
  # (measured 2.9x-3.4x over the normalisations from n = 100 to 1,600).
  small, large = rms(100), rms(1600)
  assert large < small / 2, (small, large)


# ------------------------------------- Algorithm 2 and App. A.6 references


def test_bidirectional_matches_numpy_algorithm2(x64):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 3))
  pos = rng.normal(size=(50, 3)) + 0.5
  for temp in (0.05, 0.3, 2.0):
    v = fields.drifting_field(jnp.asarray(x), jnp.asarray(pos),
                              jnp.asarray(x), temperature=temp,
                              normalization='bidirectional', mask_self=True)
    assert _rel_err(v, references.algorithm2(x, pos, x, temp)) <= 1e-10, temp


@pytest.mark.parametrize('floor', [0.0, 1e-6])
def test_multi_temperature_recipe_matches_released_reference(x64, floor):
  rng = np.random.default_rng(1)
  n, n_pos, dim = 48, 64, 6
  x = rng.normal(size=(n, dim))
  pos = rng.normal(size=(n_pos, dim)) * 0.8 + 0.3
  w_pos = rng.uniform(0.5, 1.5, n_pos)
  w_neg = rng.uniform(0.5, 1.5, n)
  temps = (0.02, 0.05, 0.2)
  v = fields.drifting_field(
      jnp.asarray(x), jnp.asarray(pos), jnp.asarray(x), temperature=temps,
      normalization='bidirectional', mask_self=True,
      pos_weights=jnp.asarray(w_pos), neg_weights=jnp.asarray(w_neg),
      normalize_distances=True, normalize_drift=True, affinity_floor=floor)
  ref_scaled, s = references.released_drift(x, pos, w_pos, w_neg, temps, floor)
  assert _rel_err(v / s, ref_scaled) <= 1e-9
  assert _rel_err(v, ref_scaled * s) <= 1e-9


@pytest.mark.parametrize('block', [None, 7])
def test_bidirectional_one_exp_path_and_log_space_fallback(x64, monkeypatch,
                                                           block):
  # In range, the one-exponential form is used; an outlier 40 units away at
  # tau = 0.05 puts logits 800 below the global max, beyond float range for
  # that form, so the log-space formulas take over. Both must equal Alg. 2.
  rng = np.random.default_rng(3)
  x = rng.normal(size=(30, 2))
  pos = rng.normal(size=(25, 2)) * 0.5
  far = x.copy()
  far[0] = 40.0
  for xs in (x, far):
    v = fields.drifting_field(jnp.asarray(xs), jnp.asarray(pos),
                              jnp.asarray(xs), temperature=0.05,
                              block_size=block)
    assert _rel_err(v, references.algorithm2(xs, pos, xs, 0.05)) <= 1e-10
  # Forcing the fallback everywhere gives the same numbers as the fast form.
  fast = fields.drifting_field(jnp.asarray(x), jnp.asarray(pos),
                               jnp.asarray(x), temperature=(0.05, 0.2),
                               block_size=block)
  monkeypatch.setattr(fields.bidirectional, '_MAX_LOG_GAP', -1.0)
  jax.clear_caches()
  slow = fields.drifting_field(jnp.asarray(x), jnp.asarray(pos),
                               jnp.asarray(x), temperature=(0.05, 0.2),
                               block_size=block)
  jax.clear_caches()
  assert _rel_err(fast, slow) <= 1e-12


def test_auto_block_size():
  assert fields.auto_block_size(100, 200) == 100  # small: dense
  b = fields.auto_block_size(65536, 131072, 1, 64)
  assert 8 <= b < 65536 and b & (b - 1) == 0
  assert fields.auto_block_size(65536, 131072, 3, 2) == 8  # at least 8 rows
  assert (fields.auto_block_size(4096, 4096, 3)
          < fields.auto_block_size(4096, 4096, 1))


def test_affinity_floor_changes_the_low_temperature_field():
  # The released code's floor is not a detail: at tau = 0.02 on normalised
  # distances it visibly rotates the field, so it must stay explicit.
  x = _normal(0, (256, 2))
  pos = _normal(1, (256, 2), 1.0)
  kw = dict(temperature=0.02, normalize_distances=True)
  v0 = fields.drifting_field(x, pos, x, **kw)
  v1 = fields.drifting_field(x, pos, x, affinity_floor=1e-6, **kw)
  cos = jnp.sum(v0 * v1, -1) / (jnp.linalg.norm(v0, axis=-1)
                                * jnp.linalg.norm(v1, axis=-1))
  assert float(jnp.mean(cos)) < 0.99


# --------------------------------------------------------- blocked = dense


@pytest.mark.parametrize('normalization', NORMS)
@pytest.mark.parametrize('recipe', ['raw', 'authors'])
def test_blocked_matches_dense(normalization, recipe):
  n, n_pos, dim = 37, 29, 3  # 37 is not a multiple of the block size
  x = _normal(0, (n, dim))
  pos = _normal(1, (n_pos, dim), 0.5)
  w_pos = jax.random.uniform(jax.random.PRNGKey(2), (n_pos,), minval=0.5)
  w_neg = jax.random.uniform(jax.random.PRNGKey(3), (n,), minval=0.5)
  kw = dict(normalization=normalization, mask_self=True, pos_weights=w_pos,
            neg_weights=w_neg)
  if recipe == 'authors':
    kw.update(temperature=(0.02, 0.05, 0.2), normalize_distances=True,
              normalize_drift=True)
    if normalization == 'bidirectional':
      kw.update(affinity_floor=1e-6)
  dense = fields.drifting_field(x, pos, x, **kw)
  for block in (1, 8, 36):
    blocked = fields.drifting_field(x, pos, x, block_size=block, **kw)
    # float32 with a different summation order: 1e-5 relative.
    assert _rel_err(blocked, dense) <= 1e-5, block


def test_blocked_path_works_under_jit():
  x = _normal(0, (50, 2))
  pos = _normal(1, (40, 2))
  f = jax.jit(lambda a, b: fields.drifting_field(a, b, a, block_size=16))
  assert _rel_err(f(x, pos), fields.drifting_field(x, pos, x)) <= 1e-5


# --------------------------------------------------- loss, jit, vmap, dtypes


def test_drift_loss_gradient_is_minus_v_over_numel():
  x = _normal(0, (32, 4))
  pos = _normal(1, (40, 4), 0.5)

  def loss(z):
    v = fields.drifting_field(z, pos, z, temperature=(0.05, 0.2),
                              normalize_distances=True, normalize_drift=True)
    return 0.5 * jnp.mean((z - jax.lax.stop_gradient(z + v))**2)

  grad = jax.grad(loss)(x)
  v = fields.drifting_field(x, pos, x, temperature=(0.05, 0.2),
                            normalize_distances=True, normalize_drift=True)
  np.testing.assert_allclose(grad, -v / x.size, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize('normalization', NORMS)
def test_vmap_over_groups_equals_loop(normalization):
  xs = _normal(0, (3, 20, 2))
  pos = _normal(1, (3, 25, 2), 0.5)
  f = lambda a, b: fields.drifting_field(a, b, a, normalization=normalization,
                                         temperature=(0.05, 0.2))
  batched = jax.jit(jax.vmap(f))(xs, pos)
  for g in range(3):
    assert _rel_err(batched[g], f(xs[g], pos[g])) <= 1e-5


@pytest.mark.parametrize('normalization', NORMS)
def test_tiny_temperature_and_duplicates_stay_finite(normalization):
  x = _normal(0, (64, 2))
  x = x.at[1].set(x[0]).at[2].set(x[0])  # duplicate generated points
  pos = jnp.concatenate([_normal(1, (63, 2)), x[:1]])  # and a shared point
  for block in (None, 16):
    v = fields.drifting_field(x, pos, x, temperature=(1e-3, 0.02),
                              normalization=normalization,
                              normalize_distances=True, normalize_drift=True,
                              block_size=block)
    assert bool(jnp.all(jnp.isfinite(v)))
    v = fields.drifting_field(x, pos, x, temperature=1e-3,
                              normalization=normalization, block_size=block)
    assert bool(jnp.all(jnp.isfinite(v)))


def test_float64_inputs_give_float64_fields(x64):
  x = _normal(0, (10, 2), dtype=jnp.float64)
  for norm in NORMS:
    assert fields.drifting_field(x, x + 1, x, normalization=norm).dtype \
        == jnp.float64


def test_mean_shift_is_nadaraya_watson(x64):
  x = _normal(0, (7, 2), dtype=jnp.float64)
  y = _normal(1, (9, 2), dtype=jnp.float64)
  w = jnp.linspace(0.5, 2.0, 9)
  k = np.exp(np.asarray(kernel_fn('laplace', x, y, 0.4))) * np.asarray(w)
  ref = (k @ np.asarray(y)) / k.sum(1, keepdims=True) - np.asarray(x)
  got = fields.mean_shift(x, y, kernel='laplace', temperature=0.4, weights=w)
  assert _rel_err(got, ref) <= 1e-12


def test_nw_field_is_difference_of_mean_shifts(x64):
  x = _normal(0, (12, 3), dtype=jnp.float64)
  pos = _normal(1, (15, 3), dtype=jnp.float64)
  v = fields.drifting_field(x, pos, x, kernel='cauchy', temperature=0.7,
                            normalization='nw')
  expected = (fields.mean_shift(x, pos, kernel='cauchy', temperature=0.7)
              - fields.mean_shift(x, x, kernel='cauchy', temperature=0.7,
                                  exclude_self=True))
  assert _rel_err(v, expected) <= 1e-12


@pytest.mark.parametrize('normalization', NORMS)
def test_field_carries_no_gradient(normalization):
  # Deng Eq. 6: V is a fixed target; nothing may backpropagate through it,
  # also when a user forgets the stop-gradient around x + V.
  x = _normal(0, (16, 2))
  pos = _normal(1, (20, 2))
  grads = jax.grad(lambda z, p: jnp.sum(fields.drifting_field(
      z, p, z, normalization=normalization, block_size=5)), argnums=(0, 1))(
          x, pos)
  for g in grads:
    assert float(jnp.max(jnp.abs(g))) == 0.0


# ------------------------------------------- antisymmetry scales, Z = 1


def _algorithm2_halves(x, pos, temp):
  """Alg. 2's cross-weighted halves V+ = W_pos (y+ - x), V- = W_neg (y- - x)
  (negatives = x, self-masked), float64 NumPy."""
  n = x.shape[0]
  dist_pos = references.cdist(x, pos)
  dist_neg = references.cdist(x, x) + np.eye(n) * 1e6
  logit = np.concatenate([-dist_pos / temp, -dist_neg / temp], axis=1)
  a = np.sqrt(references.softmax(logit, -1) * references.softmax(logit, -2))
  a_pos, a_neg = a[:, :len(pos)], a[:, len(pos):]
  w_pos = a_pos * a_neg.sum(1, keepdims=True)
  w_neg = a_neg * a_pos.sum(1, keepdims=True)
  v_pos = w_pos @ pos - w_pos.sum(1, keepdims=True) * x
  v_neg = w_neg @ x - w_neg.sum(1, keepdims=True) * x
  return v_pos, v_neg


@pytest.mark.parametrize('scales', [(1.5, 1.0), (1.0, 2.0), (1.0, 0.0)])
@pytest.mark.parametrize('fallback', [False, True])
def test_antisymmetry_scales_match_algorithm2_halves(x64, monkeypatch,
                                                     scales, fallback):
  """a V+ - b V- for the bidirectional field, on the one-exponential path
  and on the log-space path (forced)."""
  rng = np.random.default_rng(5)
  x, pos = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) * 0.5 + 0.3
  if fallback:
    monkeypatch.setattr(fields.bidirectional, '_MAX_LOG_GAP', -1.0)
    jax.clear_caches()
  a, b = scales
  v = fields.drifting_field(jnp.asarray(x), jnp.asarray(pos), jnp.asarray(x),
                            temperature=0.3, pos_scale=a, neg_scale=b)
  if fallback:
    jax.clear_caches()
  v_pos, v_neg = _algorithm2_halves(x, pos, 0.3)
  assert _rel_err(v, a * v_pos - b * v_neg) <= 1e-10
  # The halves sum to the usual field (the x terms cancel).
  np.testing.assert_allclose(v_pos - v_neg,
                             references.algorithm2(x, pos, x, 0.3),
                             atol=1e-12)


@pytest.mark.parametrize('normalization', ['nw', 'row', 'none'])
def test_antisymmetry_scales_are_linear_and_nw_half_is_the_mean_shift(
    x64, normalization):
  x, pos = _normal(0, (50, 3), dtype=jnp.float64), _normal(
      1, (60, 3), 0.5, jnp.float64)
  field = lambda a, b: fields.drifting_field(
      x, pos, x, normalization=normalization, temperature=0.7,
      pos_scale=a, neg_scale=b)
  v_p, minus_v_q = field(1.0, 0.0), field(0.0, 1.0)
  assert _rel_err(field(1.5, 1.0), 1.5 * v_p + minus_v_q) <= 1e-12
  assert _rel_err(field(1.0, 1.0), v_p + minus_v_q) <= 1e-12
  if normalization == 'nw':
    assert _rel_err(v_p, fields.mean_shift(x, pos, temperature=0.7)) <= 1e-12


def test_unnormalised_field_matches_numpy(x64):
  """Z = 1: mean over each side of k (y - x); the self pair is not counted."""
  rng = np.random.default_rng(6)
  x, pos = rng.normal(size=(20, 2)), rng.normal(size=(15, 2)) + 0.4
  tau = 0.5
  k_pos = np.exp(-references.cdist(x, pos) / tau)
  k_neg = np.exp(-references.cdist(x, x) / tau) * (1 - np.eye(20))
  want = ((k_pos[:, :, None] * (pos[None] - x[:, None])).sum(1) / 15
          - (k_neg[:, :, None] * (x[None] - x[:, None])).sum(1) / 19)
  v = fields.drifting_field(jnp.asarray(x), jnp.asarray(pos), jnp.asarray(x),
                            temperature=tau, normalization='none')
  assert _rel_err(v, want) <= 1e-12


def test_antisymmetry_scales_reject_non_finite():
  x = _normal(0, (8, 2))
  with pytest.raises(ValueError, match='pos_scale'):
    fields.drifting_field(x, x, x, pos_scale=float('nan'))
  with pytest.raises(ValueError, match='neg_scale'):
    fields.drifting_field(x, x, x, neg_scale='1')


def test_temperature_factor_multiplies_every_temperature():
  """`field.temperature_factor` (the ordered axis a suite's grid extends)
  is the temperature set times the factor, exactly: the same field, and a
  spec built from itself does not scale again; the annealing floors use
  the scaled temperatures."""
  x, pos, neg = (jax.random.normal(jax.random.key(i), (32, 2))
                 for i in range(3))
  scaled = fields.FieldSpec(temperatures=(0.02, 0.2), temperature_factor=2.5,
                            normalize_distances=True)
  assert scaled.temperatures == (0.05, 0.5)
  direct = fields.FieldSpec(temperatures=(0.05, 0.5), normalize_distances=True)
  np.testing.assert_array_equal(scaled(x, pos, neg), direct(x, pos, neg))
  assert dataclasses.replace(scaled).temperatures == (0.05, 0.5)
  c = methods.base_config()
  c.field.update(temperatures=(0.1, 0.4), temperature_factor=0.5)
  c.drifting.update(temperature_schedule='exponential', anneal_rate=0.1,
                    min_temperature=0.1)
  # Floors min_temperature / tau_k over the scaled taus (0.05, 0.2).
  np.testing.assert_allclose(drifting.temperature_schedule(c)(10**6),
                             [2.0, 0.5])
  c.field.temperature_factor = -1.0
  with pytest.raises(ValueError, match='temperature_factor'):
    fields.FieldSpec.from_config(c.field)
