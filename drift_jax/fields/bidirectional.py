"""Alg. 2's bidirectional field without an affinity floor, one exponential
per pair and pass (the fast path; the fields package docstring, "Memory
and speed"), falling back to the log-space block when the logits span
more than float32 allows."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from drift_jax.fields import blocks
from drift_jax.fields import kernels as kernels_lib
from drift_jax.fields.kernel_weighted import _fields_from_log_kernels
from drift_jax.fields.kernel_weighted import _scaled_halves

# Largest gap (in log units) between a row's or column's log-kernel maximum
# and the global one for which the one-exponential form stays in float32
# range: its factors exp(-gap / 2) must not underflow (e^-75 > 1e-38).
_MAX_LOG_GAP = 150.0


def _bidirectional_fields(x, targets, w, spec, factors=None):
  """Alg. 2's bidirectional field (no floor), blocked, one exp per pass.

  Pass 1 (no exponentials): the distance scale, and each row's and column's
  smallest (self-masked) distance, whose kernel values are the log maxima
  m_i, n_j. Pass 2: S_j = sum_i exp(l_ij - n_j). Pass 3: F_ij =
  exp(l_ij - (m_i + n_j) / 2) in (0, 1], and one matmul of F with the
  targets scaled by c_j = w_j / sqrt(S_j), augmented with the columns c and
  g_j = exp((n_j - M) / 2) (M = max n): it returns A @ y, the row sums of A
  over positives and negatives, and R_i = h_i^-1 sum_j F_ij g_j with
  h_i = exp((m_i - M) / 2), so that A_ij = F_ij c_j / sqrt(R_i). This is
  exp(l_ij - (lse_j l + lse_i l) / 2), the geometric mean of the row and
  column softmaxes.

  Longer than 60 lines on purpose: the three passes share the blocks, the
  column statistics and the float32 range guard, and this exact sequence
  of operations is what keeps the default field bit-identical to the one
  every measured result in docs/ was trained with (README, "Quality bar":
  a reordering of float operations moved a seed from 0.90x to 1.88x).
  """
  n, dim = x.shape
  n_pos, n_t = spec.n_pos, targets.shape[0]
  x_blocks, ids, valid = blocks.query_blocks(x, spec.block_size)
  temps = spec.temps

  def masked_sq(xb, qid):
    sq = kernels_lib.pairwise_sq_distances(xb, targets, spec.precision)
    if spec.mask_self:
      is_self = blocks.self_pairs(qid, n_t, n_pos)
      return sq, jnp.where(is_self, jnp.inf, sq)
    return sq, sq

  def pass1(carry, inputs):
    col_min, dist_sum = carry
    xb, qid, ok = inputs
    sq, msq = masked_sq(xb, qid)
    dist_sum += blocks.weighted_distance_sum(sq, w, ok)
    col_min = jnp.minimum(
        col_min, jnp.min(jnp.where(ok[:, None], msq, jnp.inf), axis=0))
    return (col_min, dist_sum), jnp.min(msq, axis=1)

  # A scan, not a map: per-block column minima would be [n_blocks, T].
  # Carries start from `targets` so that under shard_map they have its
  # (device-varying) type.
  zero = jnp.zeros_like(targets[:, 0])  # [T]
  init = (zero + jnp.inf, zero[0])
  (col_min, dist_sum), row_min = blocks.scan_blocks(
      pass1, init, (x_blocks, ids, valid), spec.accelerator)
  scale = (dist_sum / (n * jnp.sum(w))
           if spec.normalize_distances else 1.0)
  inv_sq = 1.0 / scale**2
  if factors is None:
    kernels = lambda sq: [spec.kernel(sq * inv_sq, t) for t in temps]
  else:
    kernels = lambda sq: [spec.kernel(sq * inv_sq * factors[k], t)
                          for k, t in enumerate(temps)]
  m = jnp.stack(kernels(row_min))  # [K, n_blocks, B]: decreasing kernels
  col_max = jnp.stack(kernels(col_min))  # [K, T]
  top = jnp.max(col_max, axis=-1)  # [K], the global max M
  m_valid = jnp.where(valid[None], m, top[:, None, None])
  in_range = jnp.logical_and(
      jnp.all(m_valid - top[:, None, None] >= -_MAX_LOG_GAP),
      jnp.all(col_max - top[:, None] >= -_MAX_LOG_GAP))

  # Temperatures are a Python loop of 2-D [B, T] arrays, not one [K, B, T]
  # array: XLA:CPU runs the batched form several times slower (BENCHMARKS.md).
  def log_kernels(xb, qid):
    return kernels(masked_sq(xb, qid)[1])  # self pairs at +inf: log k = -inf

  def pass2(col_sum, inputs):
    xb, qid, ok = inputs
    sums = [jnp.sum(jnp.exp(jnp.where(ok[:, None], logk, -jnp.inf)
                            - col_max[k][None, :]), axis=0)
            for k, logk in enumerate(log_kernels(xb, qid))]
    return col_sum + jnp.stack(sums), None

  col_sum, _ = blocks.scan_blocks(
      pass2, jnp.stack([zero] * len(temps)), (x_blocks, ids, valid),
      spec.accelerator)  # S_j >= 1
  g = jnp.exp(0.5 * (col_max - top[:, None]))  # [K, T]
  c = w / jnp.sqrt(col_sum)  # [K, T]
  aug = jnp.concatenate([c[..., None] * targets, c[..., None], g[..., None]],
                        axis=-1)  # [K, T, D + 2]

  def pass3_fast(inputs):
    xb, qid, m_b = inputs  # m_b: [K, B]
    out = []
    for k, logk in enumerate(log_kernels(xb, qid)):
      f = jnp.exp(logk - 0.5 * (m_b[k][:, None] + col_max[k][None, :]))
      out_pos = kernels_lib.matmul(f[:, :n_pos], aug[k, :n_pos],
                                   spec.precision)  # [B, D + 2]
      out_neg = kernels_lib.matmul(f[:, n_pos:], aug[k, n_pos:],
                                   spec.precision)
      h = jnp.exp(0.5 * (m_b[k] - top[k]))  # [B]
      inv_r = jnp.sqrt(h / jnp.maximum(out_pos[:, -1] + out_neg[:, -1],
                                       jnp.finfo(x.dtype).tiny))
      s_pos = out_pos[:, dim] * inv_r  # row sums of A over positives
      s_neg = out_neg[:, dim] * inv_r
      # inv_r factored out as before the antisymmetry scales existed, so
      # that the default field is bit-identical to earlier versions.
      out.append(inv_r[:, None] * _scaled_halves(
          out_pos[:, :dim] * s_neg[:, None], out_neg[:, :dim] * s_pos[:, None],
          (s_pos * s_neg / inv_r)[:, None], xb, spec))
    return jnp.stack(out)

  def pass3_log_space(inputs):
    xb, qid, _ = inputs
    col_lse = col_max + jnp.log(col_sum)
    logk = jnp.stack(log_kernels(xb, qid))
    return _fields_from_log_kernels(logk, targets, w, spec, col_lse, xb)

  # m: [n_blocks, K, B]
  block_inputs = (x_blocks, ids, jnp.moveaxis(m, 1, 0))
  if spec.floor > 0 or spec.accelerator:  # no cond; the floor acts on A
    fields = blocks.map_blocks(pass3_log_space, block_inputs)
  else:
    fields = lax.cond(
        in_range, lambda: blocks.map_blocks(pass3_fast, block_inputs),
        lambda: blocks.map_blocks(pass3_log_space, block_inputs))
  return blocks.unblock(fields, n), scale
