"""The kernel-weighted normalisations of one block of queries (Deng et al.
2026, Alg. 2): `nw`, `row`, `none` and the bidirectional block in log
space, and the blocked evaluation that drives `nw`, `row` and `none`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from drift_jax.fields import blocks
from drift_jax.fields import kernels as kernels_lib


def _log_kernels(sq, kernel, temps, inv_scale_sq, query_ids, n_pos,
                 mask_self, factors=None):
  """log k for every temperature, self pairs at -inf: [K, B, T];
  `factors` [K] (a temperature schedule) divide each one's distances."""
  sq = sq * inv_scale_sq
  if factors is None:
    logk = jnp.stack([kernel(sq, t) for t in temps])
  else:
    logk = jnp.stack([kernel(sq * factors[k], t)
                      for k, t in enumerate(temps)])
  if mask_self:
    is_self = blocks.self_pairs(query_ids, sq.shape[-1], n_pos)
    logk = jnp.where(is_self[None], -jnp.inf, logk)
  return logk


def _scaled_halves(m_pos, m_neg, mass, xb, spec):
  """a (m_pos - mass x) - b (m_neg - mass x): the two halves of a field
  with total weight `mass` each, scaled by (a, b) = (pos_scale, neg_scale);
  with a = b the x terms cancel (and are not computed)."""
  a, b = spec.pos_scale, spec.neg_scale
  if a == b:
    return a * (m_pos - m_neg) if a != 1.0 else m_pos - m_neg
  return a * m_pos - b * m_neg - (a - b) * mass * xb


def _cross_weighted(a, targets, xb, spec):
  """V = A_pos rowsum(A_neg) (pos - x) - A_neg rowsum(A_pos) (neg - x)
  (Alg. 2, each half scaled by `_scaled_halves`)."""
  n_pos = spec.n_pos
  a_pos, a_neg = a[..., :n_pos], a[..., n_pos:]
  s_pos = jnp.sum(a_pos, axis=-1, keepdims=True)
  s_neg = jnp.sum(a_neg, axis=-1, keepdims=True)
  mm = functools.partial(kernels_lib.matmul, precision=spec.precision)
  return _scaled_halves(mm(a_pos * s_neg, targets[:n_pos]),
                        mm(a_neg * s_pos, targets[n_pos:]), s_pos * s_neg, xb,
                        spec)


def _fields_from_log_kernels(logk, targets, w, spec, col_lse, xb):
  """Per-temperature fields [K, B, D] of one block of queries.

  Args:
    logk: [K, B, T] log kernels (self pairs at -inf).
    targets: [T, D] positives then negatives.
    w: [T] target weights.
    spec: _Resolved.
    col_lse: [K, T] log-sum-exp over *all* queries (bidirectional only).
    xb: [B, D] the queries.
  """
  return spec.block_fields(logk, targets, w, spec, col_lse, xb)


def _nw_block(logk, targets, w, spec, col_lse, xb):
  """Separate Nadaraya-Watson normalisers for the two halves."""
  del col_lse
  n_pos = spec.n_pos
  logits = logk + jnp.log(w)
  mm = functools.partial(kernels_lib.matmul, precision=spec.precision)
  m_pos = mm(jax.nn.softmax(logits[..., :n_pos], axis=-1), targets[:n_pos])
  m_neg = mm(jax.nn.softmax(logits[..., n_pos:], axis=-1), targets[n_pos:])
  return _scaled_halves(m_pos, m_neg, 1.0, xb, spec)


def _unnormalized_block(logk, targets, w, spec, col_lse, xb):
  """Mean of w k (y - x) per side; masked self pairs are not counted."""
  del col_lse
  n_pos = spec.n_pos
  kw = jnp.exp(logk) * w
  counted = jnp.where(jnp.isneginf(logk), 0.0, w)
  n_p = jnp.sum(counted[..., :n_pos], axis=-1, keepdims=True)
  n_n = jnp.maximum(jnp.sum(counted[..., n_pos:], axis=-1, keepdims=True),
                    jnp.finfo(kw.dtype).tiny)
  mm = functools.partial(kernels_lib.matmul, precision=spec.precision)
  m_pos = mm(kw[..., :n_pos], targets[:n_pos]) / n_p
  m_neg = mm(kw[..., n_pos:], targets[n_pos:]) / n_n
  mass_pos = jnp.sum(kw[..., :n_pos], axis=-1, keepdims=True) / n_p
  mass_neg = jnp.sum(kw[..., n_pos:], axis=-1, keepdims=True) / n_n
  a, b = spec.pos_scale, spec.neg_scale
  return a * (m_pos - mass_pos * xb) - b * (m_neg - mass_neg * xb)


def _row_block(logk, targets, w, spec, col_lse, xb):
  """One softmax over [positives, negatives], cross-weighted."""
  del col_lse
  a = jax.nn.softmax(logk + jnp.log(w), axis=-1)
  return _cross_weighted(a, targets, xb, spec)


def _bidirectional_block(logk, targets, w, spec, col_lse, xb):
  """Geometric mean of the row and column softmaxes, in log space so that
  nothing underflows at small temperature; cross-weighted."""
  log_row = logk - jax.nn.logsumexp(logk, axis=-1, keepdims=True)
  log_both = log_row + (logk - col_lse[:, None, :])
  if spec.floor > 0:
    log_both = jnp.maximum(log_both, jnp.log(spec.floor))
  a = jnp.exp(0.5 * log_both) * w
  return _cross_weighted(a, targets, xb, spec)


def _blocked_fields(x, targets, w, spec, factors=None):
  """`nw` and `row` fields, one [B, T] block of queries at a time (a single
  block when `spec.block_size` >= N: the dense evaluation)."""
  n = x.shape[0]
  x_blocks, ids, valid, block_sq, scale = blocks.prepare(x, targets, w,
                                                         spec)

  def block_fields(inputs):
    xb, qid = inputs
    logk = _log_kernels(block_sq(xb), spec.kernel, spec.temps,
                        1.0 / scale**2, qid, spec.n_pos, spec.mask_self,
                        factors)
    return _fields_from_log_kernels(logk, targets, w, spec, None, xb)

  fields = blocks.map_blocks(block_fields, (x_blocks, ids))
  return blocks.unblock(fields, n), scale
