"""Feature sets and grouped (per-location, per-class, CFG) drifting fields
against direct computations with `fields.drifting_field`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import fields
from drift_jax.fields import features


def _maps(n=6):
  key = jax.random.key(0)
  return [jax.random.normal(key, (n, 4, 4, 3)),
          jax.random.normal(jax.random.fold_in(key, 1), (n, 2, 2, 5))]


def test_feature_sets_match_direct_reductions():
  maps = _maps()
  raw = jnp.arange(12.0).reshape(6, 2)
  sets = features.feature_sets(maps, raw=raw, patch_sizes=(2, 4))
  m0 = np.asarray(maps[0])
  # (a) per-location vectors: location (h, w) of sample i.
  np.testing.assert_array_equal(sets['map0/loc'][1 * 4 + 2], m0[:, 1, 2])
  # (b) global mean / std over locations.
  np.testing.assert_allclose(sets['map0/global_mean'][0], m0.mean((1, 2)),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(sets['map0/global_std'][0],
                             np.sqrt(m0.var((1, 2)) + 1e-6), rtol=1e-5)
  # (c) the 2x2 patch at patch-row 1, patch-col 0 (rows 2-3, cols 0-1).
  np.testing.assert_allclose(sets['map0/patch2_mean'][1 * 2 + 0],
                             m0[:, 2:4, 0:2].mean((1, 2)), rtol=1e-6,
                             atol=1e-6)
  # A 4x4 patch of a 4x4 map is the global statistic: not repeated; the
  # 2x2 map has no patch sets.
  assert 'map0/patch4_mean' not in sets and 'map1/patch2_mean' not in sets
  assert sets['map1/loc'].shape == (4, 6, 5)
  np.testing.assert_array_equal(sets['raw'][0], raw)


def _field(normalization='nw', **kw):
  def field(x, pos, neg, neg_weights):
    return fields.drifting_field(x, pos, neg, kernel='gaussian',
                                 temperature=0.7, normalization=normalization,
                                 mask_self=True, neg_weights=neg_weights,
                                 **kw)
  return field


def _points(seed, shape, shift=0.0):
  return jax.random.normal(jax.random.key(seed), shape) + shift


@pytest.mark.parametrize('normalization', ['nw', 'bidirectional'])
def test_grouped_field_is_the_field_per_location_and_class(normalization):
  num_loc, classes, n, p, f = 3, 2, 5, 4, 3
  x = _points(1, (num_loc, classes * n, f))
  pos = _points(2, (num_loc, classes * p, f), 0.5)
  field = _field(normalization)
  got = features.grouped_field(field, x, pos, num_classes=classes)
  for loc in range(num_loc):
    for c in range(classes):
      xc = x[loc, c * n:(c + 1) * n]
      want = field(xc, pos[loc, c * p:(c + 1) * p], xc, None)
      np.testing.assert_allclose(got[loc, c * n:(c + 1) * n], want,
                                 rtol=1e-5, atol=1e-6)


def test_cfg_negatives_enter_with_the_paper_weight():
  """Per class: negatives [own samples (self-masked), U unconditional] with
  weights [1, w], w = (alpha - 1)(n - 1) / U (Deng App. A.7)."""
  num_loc, classes, n, p, u, f = 2, 3, 4, 4, 6, 2
  x = _points(1, (num_loc, classes * n, f))
  pos = _points(2, (num_loc, classes * p, f), 0.3)
  uncond = _points(3, (num_loc, u, f), -0.3)
  alpha = jnp.array([1.0, 1.5, 3.0])
  field = _field('bidirectional')
  got = features.grouped_field(field, x, pos, num_classes=classes,
                               uncond=uncond, alpha=alpha)
  for loc in range(num_loc):
    for c in range(classes):
      xc = x[loc, c * n:(c + 1) * n]
      w = (float(alpha[c]) - 1) * (n - 1) / u
      weights = jnp.concatenate([jnp.ones(n), jnp.full(u, w)])
      want = fields.drifting_field(
          xc, pos[loc, c * p:(c + 1) * p],
          jnp.concatenate([xc, uncond[loc]]), kernel='gaussian',
          temperature=0.7, normalization='bidirectional', mask_self=True,
          neg_weights=weights)
      np.testing.assert_allclose(got[loc, c * n:(c + 1) * n], want,
                                 rtol=1e-5, atol=1e-6)
  assert features.cfg_weight(2.0, 11, 5) == pytest.approx(2.0)


def test_alpha_one_gives_the_unguided_nw_field():
  """With alpha = 1 the unconditional negatives have weight 0: under the
  NW normalisation they drop out of the field exactly."""
  x = _points(1, (1, 8, 2))
  pos = _points(2, (1, 8, 2), 0.4)
  uncond = _points(3, (1, 5, 2))
  field = _field('nw')
  guided = features.grouped_field(field, x, pos, num_classes=2,
                                  uncond=uncond, alpha=jnp.ones(2))
  plain = features.grouped_field(field, x, pos, num_classes=2)
  np.testing.assert_allclose(guided, plain, rtol=1e-6, atol=1e-7)
  stronger = features.grouped_field(field, x, pos, num_classes=2,
                                    uncond=uncond, alpha=jnp.full(2, 2.0))
  assert float(jnp.max(jnp.abs(stronger - plain))) > 1e-3


@pytest.mark.parametrize('normalization', ['nw', 'row'])
def test_self_mask_leaves_extra_negatives_in(normalization):
  """mask_self with len(neg) > len(x): only (x_i, neg_i) is left out; the
  field at x_i equals an unmasked field with x_i removed from neg."""
  x = _points(1, (6, 2))
  pos = _points(2, (5, 2), 0.5)
  extra = _points(3, (4, 2), -0.5)
  kw = dict(kernel='laplace', temperature=0.5, normalization=normalization)
  got = fields.drifting_field(x, pos, jnp.concatenate([x, extra]),
                              mask_self=True, **kw)
  for i in range(6):
    neg = jnp.concatenate([jnp.delete(x, i, axis=0), extra])
    want = fields.drifting_field(x[i:i + 1], pos, neg, mask_self=False, **kw)
    np.testing.assert_allclose(got[i], want[0], rtol=1e-5, atol=1e-6)


def test_location_chunks_compute_the_same_field():
  """`location_chunk` bounds memory by mapping k locations at a time; the
  field is the same (float32 summation order aside)."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from drift_jax.fields import features as feats

  def field(x, pos, neg, neg_weights):
    w = 1.0 if neg_weights is None else neg_weights[:, None]
    return pos.mean(0) - (w * neg).sum(0) / jnp.sum(w * jnp.ones_like(neg),
                                                   axis=0) + 0 * x
  key = jax.random.key(0)
  x = jax.random.normal(key, (7, 6, 3))
  pos = jax.random.normal(jax.random.fold_in(key, 1), (7, 6, 3))
  unc = jax.random.normal(jax.random.fold_in(key, 2), (7, 4, 3))
  for kwargs in ({}, dict(uncond=unc, alpha=jnp.array([1.5, 2.0]))):
    whole = feats.grouped_field(field, x, pos, num_classes=2, **kwargs)
    for chunk in (1, 3, 7):
      np.testing.assert_allclose(
          feats.grouped_field(field, x, pos, num_classes=2,
                              location_chunk=chunk, **kwargs),
          whole, rtol=1e-6, atol=1e-6)


def test_field_costs_are_per_key_and_grow_with_the_vectors():
  """XLA's estimate of each key's field: every key is there, a key with
  16 locations costs more than its 1-vector global mean, and the shares
  sum to 1. A drifting field's cost is quadratic in the batch: doubling
  G and B about quadruples it."""
  spec = fields.FieldSpec(kernel='laplace', temperatures=(0.5,),
                          normalization='bidirectional', mask_self=True)
  field = lambda x, p, n, w: spec(x, p, n, neg_weights=w)
  sets = features.feature_sets(_maps(8), raw=jnp.zeros((8, 5)))
  costs = features.field_costs(field, sets, sets)
  assert set(costs) == set(sets)
  assert costs['map0/loc']['vectors'] == 16
  assert costs['map0/loc']['gflops'] > 4 * costs['map0/global_mean']['gflops']
  assert abs(sum(c['share'] for c in costs.values()) - 1) < 1e-9
  big = features.feature_sets(_maps(16), raw=jnp.zeros((16, 5)))
  ratio = (features.field_costs(field, big, big)['map0/loc']['gflops']
           / costs['map0/loc']['gflops'])
  assert 3 < ratio < 5, ratio


def test_max_locations_leaves_out_the_finest_sets():
  """`features.max_locations`: sets with more vectors than it are left
  out (the 4x4 map's 16 locations here), the rest are untouched."""
  import types

  import ml_collections

  from drift_jax.methods import drifting

  maps = _maps()
  encoder = types.SimpleNamespace(feature_maps=lambda params, x: maps)
  cfg = ml_collections.ConfigDict(dict(raw=True, patch_sizes=(2,),
                                       max_locations=0))
  every = drifting.make_embed(encoder, cfg)({'encoder': None},
                                            jnp.zeros((6, 5)))
  cfg.max_locations = 4
  some = drifting.make_embed(encoder, cfg)({'encoder': None},
                                           jnp.zeros((6, 5)))
  assert 'map0/loc' in every and every['map0/loc'].shape[0] == 16
  assert set(some) == {k for k, v in every.items() if v.shape[0] <= 4}
  assert 'map1/loc' in some and 'raw' in some
