"""The authors' field as their paper writes it: the benchmarks' baseline.

Deng et al. Algorithm 2 (compute_V) with the distance and drift
normalisations of their App. A.6, in plain dense jax.numpy, written here from
the paper's pseudo-code: for every temperature it recomputes the [N, Np + Nn]
distances, both softmaxes and their geometric mean, as the released code
does. It returns the field in the authors' scaled coordinates x / s,
s = S / sqrt(D), S the batch-mean distance; `drifting_field(...,
normalize_distances=True, normalize_drift=True)` returns s times it (see
`drift_jax.fields`).
"""

import jax
import jax.numpy as jnp


def cdist(a, b):
  """Euclidean distances, sqrt(max(|a|^2 + |b|^2 - 2 a.b, 1e-8)) (their
  Alg. 2 helper; safe because V is stop-gradient)."""
  sq = (jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :]
        - 2.0 * a @ b.T)
  return jnp.sqrt(jnp.maximum(sq, 1e-8))


def compute_v(x, y_pos, y_neg, temperatures, normalize=True):
  """Sum over temperatures of the (RMS-normalised) Alg. 2 field [N, D]."""
  x, y_pos, y_neg = (jax.lax.stop_gradient(a) for a in (x, y_pos, y_neg))
  n, dim = x.shape
  n_pos = y_pos.shape[0]
  targets = jnp.concatenate([y_pos, y_neg])
  scale = 1.0
  if normalize:  # App. A.6: mean pairwise distance becomes sqrt(D)
    scale = jnp.mean(cdist(x, targets)) / jnp.sqrt(dim)
  xs, ts = x / scale, targets / scale
  total = jnp.zeros_like(x)
  for tau in temperatures:
    dist = cdist(xs, ts)
    dist = dist.at[:, n_pos:].add(jnp.eye(n, y_neg.shape[0]) * 1e6)
    logit = -dist / (tau * jnp.sqrt(dim) if normalize else tau)
    a = jnp.sqrt(jax.nn.softmax(logit, axis=-1) * jax.nn.softmax(logit, axis=0))
    a_pos, a_neg = a[:, :n_pos], a[:, n_pos:]
    w_pos = a_pos * jnp.sum(a_neg, axis=1, keepdims=True)
    w_neg = a_neg * jnp.sum(a_pos, axis=1, keepdims=True)
    v = w_pos @ ts[:n_pos] - w_neg @ ts[n_pos:]
    if normalize:  # lambda = sqrt(E ||V||^2 / D)
      v = v / jnp.sqrt(jnp.mean(jnp.sum(v * v, -1)) / dim)
    total = total + v
  return total, scale


def drifting_loss(x, y_pos, temperatures, normalize=True):
  """mean((x/s - sg(x/s + V))^2) in the authors' coordinates (Alg. 1)."""
  v, scale = compute_v(x, y_pos, x, temperatures, normalize)
  xs = x / jax.lax.stop_gradient(scale)
  return jnp.mean((xs - jax.lax.stop_gradient(xs + v)) ** 2)
