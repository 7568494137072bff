"""Mean-shift and drifting fields (Deng et al. 2026, arXiv 2602.04770).

For a generated sample x, positives y+ ~ p (data) and negatives y- ~ q
(generated), the drifting field is V(x) = V_p(x) - V_q(x) with the mean shift
V_p(x) = sum_j k(x, y_j) (y_j - x) / sum_j k(x, y_j)   (Deng Eqs. 8-11).

Three normalisations of the kernel weights exist side by side:

* `nw`: separate Nadaraya-Watson normalisers for p and q (leave-one-out on q
  when `mask_self`). The theory object: with the Gaussian kernel it equals
  tau^2 (grad log p_tau - grad log q_tau) exactly (Tweedie; see `scores`).
* `row`: one softmax over [positives, negatives] jointly, then the
  cross-weighting of Deng's Algorithm 2 (steps 6-7). Equals c(x) * nw with
  c = P Q / (P + Q)^2, P and Q the kernel sums.
* `bidirectional`: Deng's Algorithm 2: A = sqrt(softmax_rows * softmax_cols)
  (softmax over targets and over queries), cross-weighted so that both halves
  have equal mass. No closed form; the authors' default.

Affinity floor. Algorithm 2 in the paper has no floor (`affinity_floor=0.0`,
the default). The authors' released training code (`drift_loss.py`) computes
sqrt(clip(row * col, 1e-6)), i.e. `affinity_floor=1e-6`. The floor adds
sqrt(1e-6) to every affinity, which at low temperature dominates the row sums
and changes the field a lot, so both are reachable and neither is implicit.

Coordinates. The returned field is always a displacement in the *input*
coordinates: x + V is the drifted sample. The authors' recipe (their App.
A.6, `normalize_distances=True`) works in scaled coordinates x / s with
s = S / sqrt(D), S the (weighted) batch-mean distance, so that the mean
distance is sqrt(D) and logits are -dist / (S tau). Their drift in those
coordinates is V_authors = V / s, and with `normalize_drift=True` each
temperature's V_authors has unit RMS. Their loss
mean((x / s - sg(x / s + V_authors))^2) is our
mean((x - sg(x + V))^2) / s^2, with s a stop-gradient constant.

Weights. For `nw` and `row`, `pos_weights` / `neg_weights` multiply the
kernel (importance weights: log w is added to the logits). For
`bidirectional` they multiply the affinity after the geometric mean, as the
authors' code does for the CFG negatives (App. A.7). The weighted mean
distance used by `normalize_distances` is sum_ij w_j d_ij / (N sum_j w_j),
over all pairs including the self pair, as in the released code.

Memory. The dense path holds [K, N, Np + Nn] logits (K temperatures).
`block_size=B` evaluates queries in blocks with running log-sum-exp column
statistics (a first pass), so peak memory is O((N + M) D + K B (N + M)).

Every function here is pure jax.numpy, works under jit and vmap (over a
leading group axis), and never differentiates through V: the inputs pass
through `stop_gradient`, as the drifting loss requires (Deng Eq. 6).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax import kernels as kernels_lib
from drift_jax import validation

NORMALIZATIONS = ('nw', 'row', 'bidirectional')


def mean_shift(x, y, *, kernel='laplace', temperature=0.05, weights=None,
               exclude_self=False):
  """Nadaraya-Watson mean shift m_y(x) - x (Deng Eq. 8-9).

  Args:
    x: [N, D] query points.
    y: [M, D] samples.
    kernel: kernel name (see `kernels.KERNELS`) or a RadialKernel.
    temperature: positive float.
    weights: optional [M] non-negative sample weights.
    exclude_self: if True, y[i] is x[i] and is left out for x[i]
      (leave-one-out); needs M == N >= 2.

  Returns:
    [N, D] sum_j w_j k(x, y_j) (y_j - x) / sum_j w_j k(x, y_j).
  """
  validation.check_queries_and_samples(x, 'y', y, exclude_self)
  (tau,) = validation.as_single_temperature(temperature)
  validation.check_weights('weights', weights, y.shape[0])
  kern = kernels_lib.get_kernel(kernel)
  x, y = lax.stop_gradient(x), lax.stop_gradient(y)
  logk = _log_kernels(kernels_lib.pairwise_sq_distances(x, y), kern, (tau,),
                      1.0, jnp.arange(x.shape[0]), 0, exclude_self)[0]
  if weights is not None:
    logk = logk + jnp.log(weights)[None, :]
  return jax.nn.softmax(logk, axis=-1) @ y - x


def drifting_field(x, pos, neg, *, kernel='laplace', temperature=0.05,
                   normalization='bidirectional', mask_self=True,
                   pos_weights=None, neg_weights=None,
                   normalize_distances=False, normalize_drift=False,
                   affinity_floor=0.0, block_size=None):
  """The drifting field V(x) = V_p(x) - V_q(x) (Deng Alg. 2, App. A.6).

  Args:
    x: [N, D] generated samples (queries).
    pos: [Np, D] positives (data), attract.
    neg: [Nn, D] negatives (generated), repel.
    kernel: kernel name or RadialKernel; default Laplace (Deng Eq. 12).
    temperature: float or tuple of floats. Several temperatures give the sum
      of their fields (each divided by its RMS when `normalize_drift`).
    normalization: 'nw', 'row' or 'bidirectional' (module docstring).
    mask_self: neg[i] is x[i] and is excluded for x[i] (Deng Alg. 2 step 2);
      needs Nn == N >= 2.
    pos_weights: optional [Np] weights; neg_weights: optional [Nn] weights.
    normalize_distances: divide distances by their weighted batch mean
      (Deng Eqs. 18-22).
    normalize_drift: divide each temperature's field by its RMS over the
      batch before summing (Deng Eqs. 23-26).
    affinity_floor: lower clip of row * col softmax before the square root;
      `bidirectional` only. 0.0 is the paper, 1e-6 the released code.
    block_size: evaluate queries in blocks of this many rows (same numbers,
      memory O(block_size (Np + Nn)) instead of O(N (Np + Nn))).

  Returns:
    [N, D] field in input coordinates (module docstring), no gradient.
  """
  temps = _validate_field_args(
      x, pos, neg, kernel=kernel, temperature=temperature,
      normalization=normalization, mask_self=mask_self,
      pos_weights=pos_weights, neg_weights=neg_weights,
      affinity_floor=affinity_floor, block_size=block_size)
  spec = _FieldSpec(kernels_lib.get_kernel(kernel), temps, normalization,
                    mask_self, pos.shape[0], float(affinity_floor),
                    bool(normalize_distances), bool(normalize_drift),
                    None if block_size is None else int(block_size))
  return _drifting_field(x, pos, neg, pos_weights, neg_weights, spec)


# ----------------------------------------------------------------- internals


@functools.partial(jax.jit, static_argnums=(5,))
def _drifting_field(x, pos, neg, pos_weights, neg_weights, spec):
  """Jitted body of `drifting_field` (one compile per shape and spec)."""
  x, pos, neg = (lax.stop_gradient(a) for a in (x, pos, neg))
  w_pos = _weights_or_ones(pos_weights, pos.shape[0], x.dtype)
  w_neg = _weights_or_ones(neg_weights, neg.shape[0], x.dtype)
  targets = jnp.concatenate([pos, neg], axis=0)  # [T, D]
  w = lax.stop_gradient(jnp.concatenate([w_pos, w_neg]))  # [T]
  if spec.block_size is None or spec.block_size >= x.shape[0]:
    fields, scale = _dense_fields(x, targets, w, spec)
  else:
    fields, scale = _blocked_fields(x, targets, w, spec)
  return _combine_temperatures(fields, scale, spec)


# ----------------------------------------------------------------- internals


@dataclasses.dataclass(frozen=True)
class _FieldSpec:
  """Static description of a field (resolved strings, hashable numbers)."""
  kernel: kernels_lib.RadialKernel
  temps: tuple[float, ...]
  normalization: str
  mask_self: bool
  n_pos: int
  floor: float
  normalize_distances: bool
  normalize_drift: bool
  block_size: int | None


def _validate_field_args(x, pos, neg, *, kernel, temperature, normalization,
                         mask_self, pos_weights, neg_weights, affinity_floor,
                         block_size):
  """Checks every argument of `drifting_field`; returns the temperatures."""
  for name, arr in (('x', x), ('pos', pos), ('neg', neg)):
    validation.check_points(name, arr)
  validation.check_same_dim(('x', 'pos', 'neg'), (x, pos, neg))
  validation.check_choice('normalization', normalization, NORMALIZATIONS)
  kernels_lib.get_kernel(kernel)
  temps = validation.as_temperatures(temperature)
  validation.check_self_mask('mask_self', mask_self, x, neg)
  validation.check_weights('pos_weights', pos_weights, pos.shape[0])
  validation.check_weights('neg_weights', neg_weights, neg.shape[0])
  if not 0.0 <= float(affinity_floor) < 1.0:
    raise ValueError(f'`affinity_floor` must be in [0, 1), got '
                     f'{affinity_floor!r}.')
  if affinity_floor > 0 and normalization != 'bidirectional':
    raise ValueError('`affinity_floor` only applies to '
                     f"normalization='bidirectional', got {normalization!r}.")
  if block_size is not None and (not isinstance(block_size, int)
                                 or block_size < 1):
    raise ValueError(f'`block_size` must be None or a positive int, got '
                     f'{block_size!r}.')
  return temps


def _weights_or_ones(weights, n, dtype):
  if weights is None:
    return jnp.ones((n,), dtype)
  return jnp.asarray(weights, dtype)


def _log_kernels(sq, kernel, temps, inv_scale_sq, query_ids, n_pos,
                 mask_self):
  """log k for every temperature, self pairs at -inf: [K, B, T]."""
  sq = sq * inv_scale_sq
  logk = jnp.stack([kernel(sq, t) for t in temps])
  if mask_self:
    neg_ids = jnp.arange(sq.shape[-1]) - n_pos  # position in `neg`
    is_self = neg_ids[None, :] == query_ids[:, None]  # [B, T]
    logk = jnp.where(is_self[None], -jnp.inf, logk)
  return logk


def _cross_weighted(a, targets, n_pos):
  """V = A_pos rowsum(A_neg) @ pos - A_neg rowsum(A_pos) @ neg (Alg. 2)."""
  a_pos, a_neg = a[..., :n_pos], a[..., n_pos:]
  s_pos = jnp.sum(a_pos, axis=-1, keepdims=True)
  s_neg = jnp.sum(a_neg, axis=-1, keepdims=True)
  return (a_pos * s_neg) @ targets[:n_pos] - (a_neg * s_pos) @ targets[n_pos:]


def _fields_from_log_kernels(logk, targets, w, spec, col_lse):
  """Per-temperature fields [K, B, D] of one block of queries.

  Args:
    logk: [K, B, T] log kernels (self pairs at -inf).
    targets: [T, D] positives then negatives.
    w: [T] target weights.
    spec: _FieldSpec.
    col_lse: [K, T] log-sum-exp over *all* queries (bidirectional only).
  """
  n_pos = spec.n_pos
  if spec.normalization == 'nw':
    logits = logk + jnp.log(w)
    m_pos = jax.nn.softmax(logits[..., :n_pos], axis=-1) @ targets[:n_pos]
    m_neg = jax.nn.softmax(logits[..., n_pos:], axis=-1) @ targets[n_pos:]
    return m_pos - m_neg
  if spec.normalization == 'row':
    a = jax.nn.softmax(logk + jnp.log(w), axis=-1)
    return _cross_weighted(a, targets, n_pos)
  # bidirectional: geometric mean of the row and column softmaxes, in log
  # space so that nothing underflows at small temperature.
  log_row = logk - jax.nn.logsumexp(logk, axis=-1, keepdims=True)
  log_both = log_row + (logk - col_lse[:, None, :])
  if spec.floor > 0:
    log_both = jnp.maximum(log_both, jnp.log(spec.floor))
  a = jnp.exp(0.5 * log_both) * w
  return _cross_weighted(a, targets, n_pos)


def _distance_scale(sq, w):
  """Weighted mean distance sum_ij w_j d_ij / (N sum_j w_j) of one block."""
  d = kernels_lib.safe_sqrt(sq)
  return jnp.sum(d * w) / (sq.shape[0] * jnp.sum(w))


def _dense_fields(x, targets, w, spec):
  sq = kernels_lib.pairwise_sq_distances(x, targets)  # [N, T]
  scale = _distance_scale(sq, w) if spec.normalize_distances else 1.0
  logk = _log_kernels(sq, spec.kernel, spec.temps, 1.0 / scale**2,
                      jnp.arange(x.shape[0]), spec.n_pos, spec.mask_self)
  col_lse = jax.nn.logsumexp(logk, axis=-2)  # [K, T]
  return _fields_from_log_kernels(logk, targets, w, spec, col_lse), scale


def _blocked_fields(x, targets, w, spec):
  """Same as `_dense_fields`, one [B, T] block of queries at a time."""
  n, dim = x.shape
  block = spec.block_size
  n_blocks = -(-n // block)
  x_blocks = jnp.pad(x, ((0, n_blocks * block - n), (0, 0)))
  x_blocks = x_blocks.reshape(n_blocks, block, dim)
  ids = jnp.arange(n_blocks * block).reshape(n_blocks, block)
  valid = ids < n  # padded rows must not enter batch statistics

  def block_sq(xb):
    return kernels_lib.pairwise_sq_distances(xb, targets)

  scale = 1.0
  if spec.normalize_distances:
    def add_distances(total, inputs):
      xb, ok = inputs
      d = kernels_lib.safe_sqrt(block_sq(xb))
      return total + jnp.sum(jnp.where(ok[:, None], d * w, 0.0)), None
    total, _ = lax.scan(add_distances, jnp.zeros((), x.dtype),
                        (x_blocks, valid))
    scale = total / (n * jnp.sum(w))

  def block_log_kernels(xb, qid):
    return _log_kernels(block_sq(xb), spec.kernel, spec.temps,
                        1.0 / scale**2, qid, spec.n_pos, spec.mask_self)

  col_lse = None
  if spec.normalization == 'bidirectional':
    # First pass: column statistics over all queries (Alg. 2 softmax over x).
    def add_columns(lse, inputs):
      xb, qid, ok = inputs
      logk = jnp.where(ok[None, :, None], block_log_kernels(xb, qid), -jnp.inf)
      return jnp.logaddexp(lse, jax.nn.logsumexp(logk, axis=-2)), None
    init = jnp.full((len(spec.temps), targets.shape[0]), -jnp.inf, x.dtype)
    col_lse, _ = lax.scan(add_columns, init, (x_blocks, ids, valid))

  def block_fields(inputs):
    xb, qid = inputs
    return _fields_from_log_kernels(block_log_kernels(xb, qid), targets, w,
                                    spec, col_lse)

  fields = lax.map(block_fields, (x_blocks, ids))  # [n_blocks, K, B, D]
  fields = jnp.moveaxis(fields, 1, 0).reshape(len(spec.temps), -1, dim)
  return fields[:, :n], scale


def _rms(v):
  return jnp.sqrt(jnp.maximum(jnp.mean(v * v), jnp.finfo(v.dtype).tiny))


def _combine_temperatures(fields, scale, spec):
  """Sums [K, N, D] per-temperature fields into V in input coordinates."""
  if not spec.normalize_drift:
    return jnp.sum(fields, axis=0)
  # RMS-normalised fields are dimensionless (unit RMS in the authors' scaled
  # coordinates); map back to input coordinates with s = S / sqrt(D).
  coord_scale = (scale / jnp.sqrt(fields.shape[-1])
                 if spec.normalize_distances else 1.0)
  return coord_scale * sum(f / _rms(f) for f in fields)
