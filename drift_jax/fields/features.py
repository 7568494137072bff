"""Feature-space and class-conditional drifting (Deng et al. 2026 §3.4-3.5,
App. A.5-A.7).

Feature sets. From each encoder feature map [N, H, W, C] the paper takes
(a) the H W per-location vectors, (b) the global mean and std over
locations, (c, d) means and stds over 2x2 and 4x4 patches; plus the raw
sample flattened to one vector ("the vanilla drifting loss"). `feature_sets`
returns each as [L, N, F]: L vectors ("locations") per sample, one drifting
field per location, one loss per vector, summed (Deng Eq. 14).

Class groups. Class-conditional drifting runs Algorithm 1 per class: the
generated samples of class c [n, F] against positives of class c [P, F],
with negatives = its own generated samples (self-masked) plus U
unconditional real samples of weight w_c = (alpha_c - 1)(n - 1) / U (Deng
Eq. 15-16, App. A.7: the official `uncond_w`). At equilibrium
q(.|c) = alpha p(.|c) - (alpha - 1) p(.|0), classifier-free guidance in one
step. `grouped_field` vmaps the field over locations and classes.

Normalisation differs in one detail from the paper: with
`normalize_distances` / `normalize_drift` each location's field has its own
scale S and lambda here, whereas the paper shares them across the
locations of one feature map.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

RAW = 'raw'


def _patch_stats(fmap, size):
  """[N, H, W, C] -> (mean, std) over non-overlapping size x size patches,
  each [N, H/size, W/size, C]."""
  n, h, w, c = fmap.shape
  patches = fmap.reshape(n, h // size, size, w // size, size, c)
  mean = jnp.mean(patches, axis=(2, 4))
  var = jnp.mean((patches - mean[:, :, None, :, None])**2, axis=(2, 4))
  return mean, jnp.sqrt(var + 1e-6)


def _as_locations(fmap):
  """[N, H, W, C] -> [H W, N, C]: one vector set per location."""
  n, h, w, c = fmap.shape
  return jnp.transpose(fmap.reshape(n, h * w, c), (1, 0, 2))


def feature_sets(maps, raw=None, patch_sizes=(2, 4)) -> dict:
  """The drifting paper's feature vectors (App. A.5) as [L, N, F] arrays.

  Args:
    maps: list of [N, H_i, W_i, C_i] encoder feature maps.
    raw: optional [N, D] samples, added as the set 'raw' ([1, N, D]).
    patch_sizes: patch sizes for the patch mean/std sets (those that do not
      divide a map or equal its whole extent are skipped).

  Returns:
    dict name -> [L, N, F], e.g. 'map0/loc', 'map0/global_mean',
    'map0/patch2_std', 'raw'.
  """
  sets = {}
  for i, fmap in enumerate(maps):
    _, h, w, _ = fmap.shape
    sets[f'map{i}/loc'] = _as_locations(fmap)
    mean = jnp.mean(fmap, axis=(1, 2), keepdims=True)  # [N, 1, 1, C]
    std = jnp.sqrt(jnp.var(fmap, axis=(1, 2), keepdims=True) + 1e-6)
    sets[f'map{i}/global_mean'] = _as_locations(mean)
    sets[f'map{i}/global_std'] = _as_locations(std)
    for size in patch_sizes:
      if size < min(h, w) and h % size == 0 and w % size == 0:
        mean, std = _patch_stats(fmap, size)
        sets[f'map{i}/patch{size}_mean'] = _as_locations(mean)
        sets[f'map{i}/patch{size}_std'] = _as_locations(std)
  if raw is not None:
    sets[RAW] = raw[None]
  return sets


def cfg_weight(alpha, num_generated: int, num_uncond: int):
  """w = (alpha - 1)(n - 1) / U (Deng App. A.7), the unconditional
  negatives' weight that makes the equilibrium guidance scale alpha."""
  return (alpha - 1.0) * (num_generated - 1) / num_uncond


def grouped_field(field, x, pos, *, num_classes: int = 1, uncond=None,
                  alpha=None, location_chunk: int = 0):
  """The drifting field per location and per class.

  Args:
    field: (x [n, F], pos [P, F], neg [n + U, F], neg_weights [n + U] or
      None) -> V [n, F], with self-masking of neg[:n] (see
      `methods.drifting.make_field_fn`).
    x: [L, G, F] generated features, rows grouped by class (class-major:
      rows c n .. (c + 1) n - 1 have class c, n = G / num_classes).
    pos: [L, B, F] data features, class-major the same way.
    num_classes: number of class groups (1: unconditional).
    uncond: optional [L, U, F] unconditional real features (extra negatives).
    alpha: [num_classes] guidance scales (needed with `uncond`).
    location_chunk: 0 computes every location's field at once (vmap);
      k > 0 computes k locations at a time (`lax.map`), so that memory
      grows with k instead of L (a 28x28 map has L = 784).

  Returns:
    V [L, G, F].
  """
  num_loc, g, f = x.shape
  x_c = x.reshape(num_loc, num_classes, g // num_classes, f)
  p_c = pos.reshape(num_loc, num_classes, pos.shape[1] // num_classes, f)
  n = g // num_classes

  if uncond is None:
    def one(xc, pc):
      return field(xc, pc, xc, None)
    if location_chunk:
      v = _chunked(jax.vmap(one), location_chunk, x_c, p_c)
    else:
      v = jax.vmap(jax.vmap(one))(x_c, p_c)
  else:
    num_uncond = uncond.shape[1]
    w = cfg_weight(lax.stop_gradient(alpha), n, num_uncond)  # [C]

    def one(xc, pc, unc, wc):
      neg = jnp.concatenate([xc, unc], axis=0)
      weights = jnp.concatenate([jnp.ones((n,), xc.dtype),
                                 jnp.full((num_uncond,), wc, xc.dtype)])
      return field(xc, pc, neg, weights)
    per_class = jax.vmap(one, in_axes=(0, 0, None, 0))
    if location_chunk:
      v = _chunked(lambda xl, pl, ul: per_class(xl, pl, ul, w),
                   location_chunk, x_c, p_c, uncond)
    else:
      v = jax.vmap(per_class, in_axes=(0, 0, 0, None))(x_c, p_c, uncond, w)
  return v.reshape(num_loc, g, f)


def _chunked(fn, chunk, *xs):
  """fn mapped over the leading axis of xs, `chunk` rows at a time."""
  return lax.map(lambda args: fn(*args), xs, batch_size=chunk)


def field_costs(field, x_sets: dict, pos_sets: dict, *,
                num_classes: int = 1) -> dict:
  """What each feature key's field costs per step, from XLA's cost
  analysis of the lowered (not compiled) `grouped_field` call.

  Args:
    field: as in `grouped_field`.
    x_sets, pos_sets: {name: [L, G, F]} and {name: [L, B, F]} feature sets
      (arrays or `jax.ShapeDtypeStruct`s: only shapes are used).
    num_classes: class groups; conditional runs add the data as
      unconditional negatives (one CFG scale per class), as the step does.

  Returns:
    {name: {'vectors': L, 'dim': F, 'gflops': the field's GFLOPs (every
    location at once), 'share': its fraction of all keys' GFLOPs}}.
  """
  out = {}
  for name, xs in x_sets.items():
    ps = pos_sets[name]
    alpha = jax.ShapeDtypeStruct((num_classes,), jnp.float32)

    def one(x, pos, alpha):
      return grouped_field(field, x, pos, num_classes=num_classes,
                           uncond=pos if num_classes > 1 else None,
                           alpha=alpha if num_classes > 1 else None)
    cost = jax.jit(one).lower(
        jax.ShapeDtypeStruct(xs.shape, xs.dtype),
        jax.ShapeDtypeStruct(ps.shape, ps.dtype), alpha).cost_analysis()
    out[name] = {'vectors': int(xs.shape[0]), 'dim': int(xs.shape[2]),
                 'gflops': float(cost.get('flops', 0.0)) / 1e9}
  total = sum(c['gflops'] for c in out.values()) or 1.0
  for c in out.values():
    c['share'] = c['gflops'] / total
  return out
