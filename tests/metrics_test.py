"""Evaluation metrics against brute-force NumPy/SciPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from drift_jax.evaluators import sample_metrics as metrics


def _sets(n=300, m=200, shift=0.0):
  rng = np.random.default_rng(0)
  return (rng.normal(size=(n, 3)).astype(np.float32) + shift,
          rng.normal(size=(m, 3)).astype(np.float32))


def test_energy_distance_matches_scipy_v_statistic():
  x, y = _sets(shift=0.5)
  want = (2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())
  np.testing.assert_allclose(metrics.energy_distance(x, y), want, rtol=1e-4)


def test_energy_distance_floor_has_its_expected_value():
  """Same law: E[V-statistic] = (1/n + 1/m) E|X - X'| > 0; for 2-D standard
  normals E|X - X'| = sqrt(pi). Averaged over 40 independent pairs, the
  mean must match within 4 standard errors (estimated from the pairs)."""
  n, reps = 400, 40
  keys = jax.random.split(jax.random.key(0), reps)
  floors = np.array([
      float(metrics.energy_distance(jax.random.normal(k, (n, 2)),
                                    jax.random.normal(
                                        jax.random.fold_in(k, 1), (n, 2))))
      for k in keys])
  assert np.all(floors > 0)
  expected = 2 * np.sqrt(np.pi) / n
  stderr = floors.std(ddof=1) / np.sqrt(reps)
  assert abs(floors.mean() - expected) < 4 * stderr
  assert stderr < 0.2 * expected  # the check has power


def test_mmd2_is_unbiased_gaussian_sum():
  x, y = _sets(shift=0.3)
  bandwidths = (0.5, 1.0, 2.0)

  def k(a, b):
    d2 = cdist(a, b, 'sqeuclidean')
    return sum(np.exp(-d2 / (2 * h**2)) for h in bandwidths)

  n, m = len(x), len(y)
  kxx, kyy = k(x, x), k(y, y)
  want = ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
          + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * k(x, y).mean())
  np.testing.assert_allclose(metrics.mmd2(x, y, bandwidths), want,
                             rtol=1e-4, atol=1e-6)
  # Same law: |mmd2| is at the noise level, far below the shifted value.
  same = metrics.mmd2(x[:150], x[150:], bandwidths)
  assert abs(float(same)) < 0.2 * want


# ------------------------------------------------- Wasserstein-2 (exact, SW)


def test_exact_w2_matches_scipy_assignment():
  from scipy.optimize import linear_sum_assignment
  rng = np.random.default_rng(1)
  x = rng.normal(size=(300, 3)).astype(np.float32)
  y = (rng.normal(size=(300, 3)) * 1.5 + 0.4).astype(np.float32)
  cost = cdist(x, y, 'sqeuclidean')
  rows, cols = linear_sum_assignment(cost)
  want = np.sqrt(cost[rows, cols].mean())
  # float32 costs: the optimum is found, its value carries ~1e-6 rounding.
  np.testing.assert_allclose(metrics.wasserstein2(x, y), want, rtol=1e-5)


def test_exact_w2_of_a_translation_is_the_shift():
  """W2(law, law + s) = |s|: the identity matching is optimal."""
  x = np.random.default_rng(2).normal(size=(200, 2)).astype(np.float32)
  shift = np.array([0.3, -0.4], np.float32)
  np.testing.assert_allclose(metrics.wasserstein2(x, x[::-1] + shift), 0.5,
                             rtol=1e-5)
  np.testing.assert_allclose(metrics.wasserstein2(x, x), 0.0, atol=1e-6)


def test_linear_assignment_is_a_permutation_and_optimal_on_random_costs():
  from scipy.optimize import linear_sum_assignment

  from drift_jax.evaluators import transport
  rng = np.random.default_rng(3)
  for n in (1, 2, 7, 64):
    cost = rng.uniform(size=(n, n))
    sigma = np.asarray(transport.linear_assignment(cost.astype(np.float32)))
    assert sorted(sigma.tolist()) == list(range(n))
    rows, cols = linear_sum_assignment(cost)
    np.testing.assert_allclose(cost[np.arange(n), sigma].sum(),
                               cost[rows, cols].sum(), rtol=1e-6)


def _w2_squared_linprog(a, b):
  """1-D W2^2 between uniform empirical laws as a transport LP (scipy)."""
  from scipy.optimize import linprog
  n, m = len(a), len(b)
  cost = (a[:, None] - b[None, :])**2
  rows = np.kron(np.eye(n), np.ones((1, m)))
  cols = np.kron(np.ones((1, n)), np.eye(m))
  res = linprog(cost.ravel(), A_eq=np.vstack([rows, cols]),
                b_eq=np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)]),
                bounds=(0, None), method='highs')
  return res.fun


def test_sliced_w2_in_one_dimension_is_the_exact_transport_lp():
  """In 1-D every direction is +-1, so SW2 = W2; unequal sizes too."""
  rng = np.random.default_rng(4)
  a = rng.normal(size=(7, 1))
  b = rng.normal(size=(11, 1)) * 2 + 1
  want = np.sqrt(_w2_squared_linprog(a[:, 0], b[:, 0]))
  got = metrics.sliced_wasserstein2(a.astype(np.float32),
                                    b.astype(np.float32), jax.random.key(0),
                                    num_projections=4)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sliced_w2_between_shifted_gaussians_has_its_closed_form():
  """N(0, I) and its shift by m in D dims: every projection is a 1-D set
  and its copy shifted by theta . m, so W2^2 = (theta . m)^2 exactly and
  SW2^2 = |m|^2 / D in expectation over directions. y is x shifted (not an
  independent draw), so sample noise is absent and the only error is the
  direction average: with 4,096 directions its relative std is 1.4 % (D =
  3: cos^2 has mean 1/3 and std 0.30), and 5 % is > 3 standard errors.
  (An independent y of n points adds a mean-difference term of relative
  std ~ 4 |m| / (D sqrt(n)) / (|m|^2 / D); at n = 4,000 that is 2 %.)"""
  n, d = 4_000, 3
  x = jax.random.normal(jax.random.key(0), (n, d))
  y = jax.random.permutation(jax.random.key(1), x) + jnp.array([2., 0., 0.])
  sw2 = metrics.sliced_wasserstein2(x, y, jax.random.key(2),
                                    num_projections=4096)
  np.testing.assert_allclose(float(sw2)**2, 4 / 3, rtol=0.05)


def test_w2_errors_name_the_argument():
  with pytest.raises(ValueError, match='same number of points'):
    metrics.wasserstein2(np.zeros((3, 2)), np.zeros((4, 2)))
  with pytest.raises(ValueError, match='num_projections'):
    metrics.sliced_wasserstein2(np.zeros((3, 2)), np.zeros((4, 2)),
                                jax.random.key(0), num_projections=0)


# ------------------------------------------------------------- floors, MMD


def test_identical_sets_energy_distance_zero_and_mmd_closed_form():
  x, _ = _sets()
  np.testing.assert_allclose(metrics.energy_distance(x, x), 0.0, atol=1e-5)
  h = (0.5, 1.0)
  kernel = sum(np.exp(-cdist(x, x, 'sqeuclidean') / (2 * b**2)) for b in h)
  n, total = len(x), kernel.sum()
  # Unbiased within-set terms drop the diagonal (each entry = len(h)).
  want = 2 * (total - n * len(h)) / (n * (n - 1)) - 2 * total / n**2
  np.testing.assert_allclose(metrics.mmd2(x, x, h), want, rtol=1e-4)
  assert want < 0


def test_with_floor_pairs_the_metric_with_data_vs_data():
  x, y = _sets(n=200, m=200, shift=1.0)
  data = x - 1.0  # same law as y
  value, floor = metrics.with_floor(metrics.energy_distance, x, data, y)
  assert float(value) == pytest.approx(float(metrics.energy_distance(x,
                                                                     data)))
  assert float(floor) < 0.2 * float(value)
  with pytest.raises(ValueError, match='second_data'):
    metrics.with_floor(metrics.energy_distance, x, data, y[:10])


# -------------------------------------------------------- mixtures, fields


def test_high_quality_radius_closed_forms():
  """The CDF is jax's float32 regularised gamma: radii to ~1e-5."""
  assert metrics.high_quality_radius(1) == pytest.approx(3.0, abs=1e-5)
  # chi-square with 2 dof: P(r) = 1 - exp(-r^2 / 2).
  mass = 0.9973
  assert metrics.high_quality_radius(2, mass) == pytest.approx(
      np.sqrt(-2 * np.log(1 - mass)), rel=1e-5)


def test_mixture_quality_of_true_samples_collapse_and_bridges():
  from drift_jax.theory import distributions
  ring = distributions.eight_gaussians()
  n = 20_000
  true = ring.sample(jax.random.key(0), n)
  q = metrics.mixture_quality(true, ring)
  assert q['modes_covered'] == 8
  # Binomial(n, 0.9973): std 3.7e-4; 4 std.
  assert abs(q['high_quality_fraction'] - 0.9973) < 1.5e-3
  # Multinomial TV: expected ~0.008 at n = 20,000 with 8 equal modes.
  assert q['mode_mass_error'] < 0.02
  np.testing.assert_allclose(q['mode_mass'].sum(), 1.0, rtol=1e-6)
  # Well-separated modes: E log p = -(log 1/8 ... ) = -H = -log 8 - log(2 pi
  # e std^2); per-sample std of log p is 1, so the mean has std 0.007.
  entropy = np.log(8) + np.log(2 * np.pi * np.e * 0.08**2)
  assert abs(q['log_likelihood'] + entropy) < 0.03

  collapsed = true[np.asarray(jnp.argmax(ring.responsibilities(true), 1))
                   == 0]
  q = metrics.mixture_quality(collapsed, ring)
  assert q['modes_covered'] == 1
  assert q['mode_mass_error'] == pytest.approx(7 / 8, abs=1e-6)

  # Points halfway between neighbouring modes are never high quality.
  means = np.asarray(ring.means)
  bridges = (means + np.roll(means, 1, axis=0)) / 2
  q = metrics.mixture_quality(bridges, ring)
  assert q['high_quality_fraction'] == 0.0 and q['modes_covered'] == 0


def test_field_agreement_closed_forms():
  ref = np.random.default_rng(5).normal(size=(50, 3)).astype(np.float32)
  same = metrics.field_agreement(ref, ref)
  assert same['relative_error'] == pytest.approx(0.0, abs=1e-6)
  assert same['cosine'] == pytest.approx(1.0, abs=1e-6)
  double = metrics.field_agreement(2 * ref, ref)
  assert double['relative_error'] == pytest.approx(1.0, rel=1e-6)
  assert double['mean_pointwise_cosine'] == pytest.approx(1.0, abs=1e-6)
  flipped = metrics.field_agreement(-ref, ref)
  assert flipped['cosine'] == pytest.approx(-1.0, abs=1e-6)
  # A 90-degree rotation in the first two axes of a planar field.
  planar = ref.copy()
  planar[:, 2] = 0
  rotated = np.stack([-planar[:, 1], planar[:, 0], planar[:, 2]], 1)
  rot = metrics.field_agreement(rotated, planar)
  assert rot['cosine'] == pytest.approx(0.0, abs=1e-6)
  assert rot['relative_error'] == pytest.approx(np.sqrt(2), rel=1e-6)
  with pytest.raises(ValueError, match='same shape'):
    metrics.field_agreement(ref[:3], ref)


# ------------------------------------------------- feature-space metrics


def test_frechet_distance_matches_scipy_sqrtm_formula(x64):
  from scipy.linalg import sqrtm
  rng = np.random.default_rng(7)
  a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
  b = rng.normal(size=(300, 5)) * 1.3 + 0.4
  mu_a, mu_b = a.mean(0), b.mean(0)
  cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  want = (np.sum((mu_a - mu_b)**2) + np.trace(cov_a) + np.trace(cov_b)
          - 2 * np.trace(sqrtm(cov_a @ cov_b).real))
  np.testing.assert_allclose(metrics.frechet_distance(a, b), want,
                             rtol=1e-8)
  np.testing.assert_allclose(metrics.frechet_distance(a, a), 0.0, atol=1e-8)


def test_precision_recall_identical_disjoint_and_collapsed():
  rng = np.random.default_rng(8)
  real = rng.normal(size=(300, 4)).astype(np.float32)
  assert metrics.precision_recall(real, real) == (1.0, 1.0)
  far = real + 100.0
  assert metrics.precision_recall(real, far) == (0.0, 0.0)
  # A generator collapsed onto a few real points: high precision, and the
  # real set is mostly outside its tiny manifold (low recall).
  collapsed = np.repeat(real[:5], 60, axis=0) + 1e-3 * rng.normal(
      size=(300, 4)).astype(np.float32)
  precision, recall = metrics.precision_recall(real, collapsed)
  assert precision == 1.0 and recall < 0.1
  with pytest.raises(ValueError, match='`k`'):
    metrics.precision_recall(real, real, k=0)


def test_precision_recall_equals_the_prdc_reference():
  """Against `prdc.compute_prdc` (Naeem et al. 2020's package, whose
  precision and recall are Kynkaanniemi et al.'s k-NN manifolds), on
  overlapping Gaussian clouds at k = 3 and 5. The reference counts a point
  on a ball's boundary as outside (<), ours inside (<=, as Kynkaanniemi's
  own code); with continuous data and float32 vs float64 distances, at most
  one point may fall on the other side of a boundary: 1 / M allowed."""
  prdc = pytest.importorskip('prdc')
  rng = np.random.default_rng(7)
  real = rng.normal(size=(300, 16)).astype(np.float32)
  fake = (0.8 * rng.normal(size=(250, 16)) + 0.4).astype(np.float32)
  for k in (3, 5):
    want = prdc.compute_prdc(real, fake, nearest_k=k)
    precision, recall = metrics.precision_recall(real, fake, k=k)
    assert abs(precision - want['precision']) <= 1 / len(fake)
    assert abs(recall - want['recall']) <= 1 / len(real)
    assert 0.1 < recall < precision < 0.99  # neither trivially 0 nor 1
