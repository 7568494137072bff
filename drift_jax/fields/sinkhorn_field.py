"""Sinkhorn drifting (He et al. 2603.12366): cross-minus-self barycentric
displacements under entropic couplings scaled on both marginals.

For queries x (uniform mass 1/N), positives y+ (mass w+ / sum w+) and
negatives y- (mass w- / sum w-; x itself, self pairs excluded when
`mask_self`), and log kernel l_ij = log k(x_i, y_j) (the cost divided by the
entropic regulariser is -logk), Sinkhorn's iterations in log space find
potentials with P_ij = exp(l_ij + f_i + g_j) meeting both marginals:

    f_i <- log a_i - logsumexp_j (l_ij + g_j)
    g_j <- log b_j - logsumexp_i (l_ij + f_i)

one coupling x -> y+ and one x -> y-. The field is the difference of the
two barycentric displacements,

    V(x_i) = sum_j P+_ij y+_j / sum_j P+_ij - sum_j P-_ij y-_j / sum_j P-_ij,

(`pos_scale`, `neg_scale` weigh the halves). Relation to the other
normalisations: with no scaling (zero iterations) the barycentres are row
softmaxes, and V is the `nw` field; the bidirectional affinity
exp(l_ij - (lse_j l_ij + lse_i l_ij) / 2) of Deng's Alg. 2 is one symmetric
half-step of this scaling from zero potentials on the joint [y+, y-]
logits, after which Alg. 2 stops; Sinkhorn iterates to the coupling whose
column marginals are met exactly (after each g update) and whose row
marginals converge (`sinkhorn_tolerance` bounds max |f_new - f|).

Evaluation is blocked over query rows (each iteration one row pass and one
column pass, `blocks`), with the same numbers as dense. OTT-JAX's Sinkhorn
(`ott.solvers.linear.sinkhorn`) is the tests' independent reference; it is
not used here because the field needs self-masked couplings, every kernel
of `kernels.KERNELS` as the cost, and the blocks the other fields share.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax.fields import blocks
from drift_jax.fields import kernels as kernels_lib


def sinkhorn_fields(x, targets, w, spec, factors=None):
  """Per-temperature Sinkhorn drifting fields [K, N, D] and the distance
  scale (the `evaluate` of the 'sinkhorn' normalisation)."""
  n = x.shape[0]
  x_blocks, ids, valid, block_sq, scale = blocks.prepare(x, targets, w,
                                                         spec)
  inv = 1.0 / scale**2
  fields = [_one_temperature(tau, x_blocks, ids, valid, targets, w, spec,
                             block_sq,
                             inv if factors is None else inv * factors[k], n)
            for k, tau in enumerate(spec.temps)]
  return jnp.stack(fields), scale


def _log_marginals(w, n_pos):
  """log b: each side's column masses, normalised per side."""
  log_w = jnp.log(w)
  return jnp.concatenate([
      log_w[:n_pos] - jax.nn.logsumexp(log_w[:n_pos]),
      log_w[n_pos:] - jax.nn.logsumexp(log_w[n_pos:])])


def _per_column(f_rows, n_t, n_pos):
  """[B, 2] row potentials (one per coupling) -> [B, T]: each target
  column gets its coupling's row potential."""
  return jnp.where(jnp.arange(n_t)[None] < n_pos, f_rows[:, :1],
                   f_rows[:, 1:])


def _potentials(tau, x_blocks, ids, valid, targets, w, spec, block_sq, inv,
                n):
  """(logits function, f [n_blocks, B, 2], g [T]) after the iterations."""
  n_pos, n_t = spec.n_pos, targets.shape[0]
  log_a, log_b = -jnp.log(n), _log_marginals(w, n_pos)
  sides = (slice(None, n_pos), slice(n_pos, None))

  def logits(xb, qid, ok):
    """[B, T] log kernels; self pairs and padded rows at -inf."""
    logk = spec.kernel(block_sq(xb) * inv, tau)
    if spec.mask_self:
      logk = jnp.where(blocks.self_pairs(qid, n_t, n_pos), -jnp.inf, logk)
    return jnp.where(ok[:, None], logk, -jnp.inf)

  def row_update(g):  # f [n_blocks, B, 2]: one potential per coupling
    def one(inputs):
      ok = inputs[2]
      logk = logits(*inputs) + g[None]
      f = jnp.stack([log_a - jax.nn.logsumexp(logk[:, s], axis=-1)
                     for s in sides], axis=-1)
      return jnp.where(ok[:, None], f, -jnp.inf)  # padded rows: no mass
    return blocks.map_blocks(one, (x_blocks, ids, valid))

  def column_update(f):
    def add(col_lse, inputs):
      xb, qid, ok, fb = inputs
      logk = logits(xb, qid, ok)
      col = jax.nn.logsumexp(logk + _per_column(fb, n_t, n_pos), axis=0)
      return jnp.logaddexp(col_lse, col), None
    init = jnp.full((n_t,), -jnp.inf, targets.dtype)
    col_lse, _ = blocks.scan_blocks(add, init, (x_blocks, ids, valid, f),
                                    spec.accelerator)
    return log_b - col_lse

  def body(carry):
    f, g, it, _ = carry
    f_new = row_update(g)
    change = jnp.max(jnp.where(jnp.isfinite(f_new), jnp.abs(f_new - f),
                               0.0))
    return f_new, column_update(f_new), it + 1, change

  def more(carry):
    _, _, it, change = carry
    return jnp.logical_and(it < spec.sinkhorn_iterations,
                           change > spec.sinkhorn_tolerance)

  f0 = jnp.zeros(x_blocks.shape[:2] + (2,), targets.dtype)
  g0 = jnp.zeros((n_t,), targets.dtype)
  start = (f0, g0, jnp.zeros((), jnp.int32),
           jnp.asarray(jnp.inf, targets.dtype))
  f, g, _, _ = lax.while_loop(more, body, start)
  return logits, f, g


def _one_temperature(tau, x_blocks, ids, valid, targets, w, spec, block_sq,
                     inv, n):
  logits, _, g = _potentials(tau, x_blocks, ids, valid, targets, w, spec,
                             block_sq, inv, n)
  return _barycentric_field(logits, g, x_blocks, ids, valid, targets, spec,
                            n)


def _barycentric_field(logits, g, x_blocks, ids, valid, targets, spec, n):
  """V_i = bary+ - bary- with P = exp(logk + g) (f cancels in a row's
  normalisation), blocked."""
  mm = functools.partial(kernels_lib.matmul, precision=spec.precision)
  n_pos = spec.n_pos

  def one(inputs):
    xb, qid, ok = inputs
    logk = logits(xb, qid, jnp.ones_like(ok)) + g[None]  # padded rows cut
    bary_pos = mm(jax.nn.softmax(logk[:, :n_pos], axis=-1), targets[:n_pos])
    bary_neg = mm(jax.nn.softmax(logk[:, n_pos:], axis=-1), targets[n_pos:])
    a, b = spec.pos_scale, spec.neg_scale
    return a * (bary_pos - xb) - b * (bary_neg - xb)

  fields = blocks.map_blocks(one, (x_blocks, ids, valid))  # [nb, B, D]
  return fields.reshape(-1, fields.shape[-1])[:n]


def couplings(x, pos, neg, resolved):
  """The two couplings (P+ [N, Np], P- [N, Nn]) of the first temperature
  of a resolved field spec (`fields.sinkhorn_couplings` resolves one), from
  the same set-up and iterations as the field (unit target weights)."""
  targets = jnp.concatenate([pos, neg])
  w = jnp.ones((targets.shape[0],), x.dtype)
  n, n_t, n_pos = x.shape[0], targets.shape[0], resolved.n_pos
  x_blocks, ids, valid, block_sq, scale = blocks.prepare(x, targets, w,
                                                         resolved)
  logits, f, g = _potentials(resolved.temps[0], x_blocks, ids, valid,
                             targets, w, resolved, block_sq,
                             1.0 / scale**2, n)

  def one(inputs):
    xb, qid, ok, fb = inputs
    return jnp.exp(logits(xb, qid, ok) + g[None]
                   + _per_column(fb, n_t, n_pos))
  plan = blocks.map_blocks(one, (x_blocks, ids, valid, f))
  plan = plan.reshape(-1, n_t)[:n]
  return plan[:, :n_pos], plan[:, n_pos:]
