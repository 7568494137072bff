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
* `none`: no normalisation (Z = 1, Deng Table 11's last row): the mean over
  each side's targets of w_j k(x, y_j) (y_j - x), positives minus negatives.
* `kernel_gradient`, `sharp_companion`, `mmd`: the conservative fields of
  `drift_jax.conservative` (gradients of log-smoothed densities, of the
  Laplace companion smoothings, of the MMD witness), in 1 / length.

Antisymmetry scales. `pos_scale` a and `neg_scale` b give a V_p - b V_q
(Deng Table 1's 1.5V+ - V-, V+ only, ...), where V_p and V_q are the two
halves of the chosen normalisation (for `row` and `bidirectional`, the
cross-weighted halves W_pos (y+ - x) and W_neg (y- - x) of Algorithm 2).
With a = b the x terms cancel and this is the usual field times a.

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

Memory and speed. The dense path holds [K, N, Np + Nn] logits (K
temperatures). `block_size=B` evaluates queries in blocks of B rows, so peak
memory is O((N + M) D + K B (N + M)); the default (`block_size=None`) picks B
so that one block's logits stay near the CPU cache (`auto_block_size`), which
is also faster than dense on a CPU (BENCHMARKS.md). `bidirectional` without
an affinity floor takes one exponential per pair and pass: with row and
column log-maxima m_i, n_j (kernel of the row / column minimum distance),
F_ij = exp(l_ij - (m_i + n_j) / 2) <= 1 gives A_ij = F_ij / sqrt(R_i S_j)
with R_i = sum_j F_ij exp((n_j - m_i) / 2) and S_j = sum_i exp(l_ij - n_j)
(`_bidirectional_fields`); when the logits span more than float range
allows (a row or column max more than 150 below the global max) it falls
back to the log-space formulas.

Every function here is pure jax.numpy, works under jit and vmap (over a
leading group axis), and never differentiates through V: the inputs pass
through `stop_gradient`, as the drifting loss requires (Deng Eq. 6).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from drift_jax import blocks
from drift_jax import conservative
from drift_jax import kernels as kernels_lib
from drift_jax import sinkhorn_field
from drift_jax import validation


class Normalization(NamedTuple):
  """A normalisation of the kernel weights (a `NORMALIZATIONS` entry).

  Attributes:
    block_fields: (logk [K, B, T], targets [T, D], w [T], spec, col_lse,
      xb [B, D]) -> per-temperature fields [K, B, D] of one query block.
    evaluate: (x, targets, w, spec, factors) -> (fields [K, N, D],
      distance scale), `factors` None or [K] (1 / temperature scale^2):
      how the blocks are driven (`_blocked_fields`: one pass per block;
      `_bidirectional_fields`: column statistics over all queries first).
  """
  block_fields: Callable[..., jax.Array] | None
  evaluate: Callable[..., tuple[jax.Array, Any]]


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
  return kernels_lib.matmul(jax.nn.softmax(logk, axis=-1), y) - x


@dataclasses.dataclass(frozen=True)
class FieldSpec:
  """The options of a drifting field, checked once (see `drifting_field`).

  Build it once (directly, or `from_config` for a run's `field` section)
  and call it on batches: `spec(x, pos, neg, pos_weights=None,
  neg_weights=None) -> V [N, D]`. A new normalisation is one function
  plus one entry in `NORMALIZATIONS`; a new kernel one entry in
  `kernels.KERNELS`.
  """
  kernel: str | kernels_lib.RadialKernel = 'laplace'
  temperatures: tuple[float, ...] = (0.05,)
  normalization: str = 'bidirectional'
  mask_self: bool = True
  normalize_distances: bool = False
  normalize_drift: bool = False
  affinity_floor: float = 0.0
  block_size: int | None = None
  pos_scale: float = 1.0
  neg_scale: float = 1.0
  precision: str = 'highest'
  sinkhorn_iterations: int = 20
  sinkhorn_tolerance: float | None = None

  def __post_init__(self):
    validation.check_choice('normalization', self.normalization,
                            NORMALIZATIONS)
    validation.check_choice('precision', self.precision,
                            kernels_lib.PRECISIONS)
    kernels_lib.get_kernel(self.kernel)
    object.__setattr__(self, 'temperatures',
                       validation.as_temperatures(self.temperatures))
    if not 0.0 <= float(self.affinity_floor) < 1.0:
      raise ValueError(f'`affinity_floor` must be in [0, 1), got '
                       f'{self.affinity_floor!r}.')
    if (self.normalization == 'sharp_companion'
        and kernels_lib.get_kernel(self.kernel).name != 'laplace'):
      raise ValueError("normalization='sharp_companion' needs the Laplace "
                       f'`kernel` (its companion psi), got {self.kernel!r}.')
    if self.affinity_floor > 0 and self.normalization != 'bidirectional':
      raise ValueError('`affinity_floor` only applies to normalization='
                       f"'bidirectional', got {self.normalization!r}.")
    if self.block_size is not None and (
        not isinstance(self.block_size, int) or self.block_size < 1):
      raise ValueError(f'`block_size` must be None or a positive int, got '
                       f'{self.block_size!r}.')
    for name in ('pos_scale', 'neg_scale'):
      value = getattr(self, name)
      if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f'`{name}` must be a finite float, got {value!r}.')
    it, tol = self.sinkhorn_iterations, self.sinkhorn_tolerance
    if isinstance(it, bool) or not isinstance(it, int) or it < 1:
      raise ValueError(f'`sinkhorn_iterations` must be a positive int, got '
                       f'{it!r}.')
    if tol is not None and not (isinstance(tol, (int, float))
                                and math.isfinite(tol) and tol > 0):
      raise ValueError(f'`sinkhorn_tolerance` must be a positive float (or '
                       f'None: run every iteration), got {tol!r}.')

  @classmethod
  def from_config(cls, field_config) -> FieldSpec:
    """The spec of a run config's `field` section (block_size 0: auto)."""
    f = field_config
    return cls(kernel=f.kernel, temperatures=tuple(f.temperatures),
               normalization=f.normalization, mask_self=f.mask_self,
               normalize_distances=f.normalize_distances,
               normalize_drift=f.normalize_drift,
               affinity_floor=f.affinity_floor,
               block_size=f.block_size or None, pos_scale=f.pos_scale,
               neg_scale=f.neg_scale, precision=f.precision,
               sinkhorn_iterations=f.sinkhorn_iterations,
               # 0 in a config: no tolerance, every iteration runs.
               sinkhorn_tolerance=f.sinkhorn_tolerance or None)

  def __call__(self, x, pos, neg, *, pos_weights=None, neg_weights=None,
               temperature_scale=None):
    """V(x) = V_p(x) - V_q(x) for this spec (`drifting_field`).

    `temperature_scale`: optional [K] array (traced, so a schedule never
    recompiles) multiplying each temperature: every kernel here is a
    function of r / tau, so tau s is evaluated as distances divided by s
    (`temperature_schedule`).
    """
    resolved = resolve(self, x, pos, neg, pos_weights, neg_weights)
    if temperature_scale is not None and jnp.shape(temperature_scale) != (
        len(self.temperatures),):
      raise ValueError(f'`temperature_scale` must have shape '
                       f'({len(self.temperatures)},), one per temperature; '
                       f'got {jnp.shape(temperature_scale)}.')
    return _drifting_field(x, pos, neg, pos_weights, neg_weights,
                           temperature_scale, resolved)


def resolve(spec: FieldSpec, x, pos, neg, pos_weights=None,
            neg_weights=None) -> _Resolved:
  """Checks the arrays against `spec` and resolves it for this call (the
  kernel object, the number of positives, the block size, the backend)."""
  for name, arr in (('x', x), ('pos', pos), ('neg', neg)):
    validation.check_points(name, arr)
  validation.check_same_dim(('x', 'pos', 'neg'), (x, pos, neg))
  validation.check_self_mask('mask_self', spec.mask_self, x, neg,
                             allow_extra=True)
  validation.check_weights('pos_weights', pos_weights, pos.shape[0])
  validation.check_weights('neg_weights', neg_weights, neg.shape[0])
  temps = spec.temperatures
  backend = jax.default_backend()
  block_size = spec.block_size or auto_block_size(
      x.shape[0], pos.shape[0] + neg.shape[0], len(temps), x.shape[1],
      backend=backend)
  return _Resolved(
      kernels_lib.get_kernel(spec.kernel), temps, spec.normalization,
      spec.mask_self, pos.shape[0], float(spec.affinity_floor),
      bool(spec.normalize_distances), bool(spec.normalize_drift),
      int(block_size), float(spec.pos_scale), float(spec.neg_scale),
      spec.precision, accelerator=backend != 'cpu',
      sinkhorn_iterations=spec.sinkhorn_iterations,
      sinkhorn_tolerance=(0.0 if spec.sinkhorn_tolerance is None
                          else float(spec.sinkhorn_tolerance)))


def sinkhorn_couplings(spec: FieldSpec, x, pos, neg):
  """The Sinkhorn couplings (P+ [N, Np], P- [N, Nn]) behind
  `spec(x, pos, neg)` for normalization='sinkhorn' (first temperature),
  from the same iterations as the field; for tests and notebooks."""
  return sinkhorn_field.couplings(x, pos, neg, resolve(spec, x, pos, neg))


def drifting_field(x, pos, neg, *, kernel='laplace', temperature=0.05,
                   normalization='bidirectional', mask_self=True,
                   pos_weights=None, neg_weights=None,
                   normalize_distances=False, normalize_drift=False,
                   affinity_floor=0.0, block_size=None, pos_scale=1.0,
                   neg_scale=1.0, precision='highest'):
  """The drifting field V(x) = V_p(x) - V_q(x) (Deng Alg. 2, App. A.6).

  Args:
    x: [N, D] generated samples (queries).
    pos: [Np, D] positives (data), attract.
    neg: [Nn, D] negatives (generated), repel.
    kernel: kernel name or RadialKernel; default Laplace (Deng Eq. 12).
    temperature: float or tuple of floats. Several temperatures give the sum
      of their fields (each divided by its RMS when `normalize_drift`).
    normalization: a key of `NORMALIZATIONS`: 'nw', 'row', 'bidirectional'
      or 'none' (module docstring), or a conservative field,
      'kernel_gradient', 'sharp_companion' (Laplace) or 'mmd'
      (`drift_jax.conservative`), or 'sinkhorn' (`drift_jax.sinkhorn_field`;
      use a `FieldSpec` to set its iterations and tolerance).
    mask_self: neg[i] is x[i] and is excluded for x[i] (Deng Alg. 2 step 2);
      needs Nn >= N >= 2 (negatives beyond the first N, e.g. CFG's
      unconditional samples, are never masked).
    pos_weights: optional [Np] weights; neg_weights: optional [Nn] weights.
    normalize_distances: divide distances by their weighted batch mean
      (Deng Eqs. 18-22).
    normalize_drift: divide each temperature's field by its RMS over the
      batch before summing (Deng Eqs. 23-26).
    affinity_floor: lower clip of row * col softmax before the square root;
      `bidirectional` only. 0.0 is the paper, 1e-6 the released code.
    block_size: evaluate queries in blocks of this many rows (same numbers,
      memory O(block_size (Np + Nn)) instead of O(N (Np + Nn))); None picks
      `auto_block_size` (dense when one block holds every query).
    pos_scale, neg_scale: V = pos_scale V_p - neg_scale V_q (module
      docstring, "Antisymmetry scales"); 1.0 and 1.0 is the field.
    precision: matmul precision of the distances and kernel averages,
      'highest' (full float32 on any backend) or 'default' (the backend's:
      TF32 on GPUs, bfloat16 passes on TPUs; faster, ~1e-3 relative error).

  Returns:
    [N, D] field in input coordinates (module docstring), no gradient.
  """
  spec = FieldSpec(kernel, temperature, normalization, mask_self,
                   normalize_distances, normalize_drift, affinity_floor,
                   block_size, pos_scale, neg_scale, precision)
  return spec(x, pos, neg, pos_weights=pos_weights, neg_weights=neg_weights)


# Elements of one [K, B, T] block of logits: 2^20 float32 (4 MiB) keeps a
# block in a CPU's L2/L3 cache at low D; at higher D the distance matmul
# dominates and wants taller blocks.
_BLOCK_ELEMENTS_LOW_D = 2**20
_BLOCK_ELEMENTS_HIGH_D = 2**25
# On an accelerator: a block's [K, B, T] float32 logits and the few arrays
# of that size the passes hold at once (distances, kernels, affinities)
# may use this fraction of the device memory; beyond it, blocks.
_ACCELERATOR_ARRAYS_PER_BLOCK = 4
_ACCELERATOR_MEMORY_FRACTION = 0.5
_ACCELERATOR_DEFAULT_MEMORY = 16 * 2**30  # when the device does not say


def auto_block_size(n_queries: int, n_targets: int, n_temperatures: int = 1,
                    dim: int = 2, *, backend: str | None = None,
                    memory_bytes: int | None = None) -> int:
  """Rows per block for `drifting_field(block_size=None)`.

  CPU: a power of two with n_temperatures * B * n_targets near 2^20
  elements (2^25 for dim > 16, where taller blocks make the distance
  matmul efficient), at least 8 rows; n_queries (dense) when that is no
  more. BENCHMARKS.md has the measurements behind these budgets.
  Accelerators (any other backend): dense, one block, while its arrays fit
  in half the device memory (`memory_bytes`, else what the device
  reports); else the largest power of two of rows that fits.
  """
  backend = backend or jax.default_backend()
  if backend == 'cpu':
    budget = _BLOCK_ELEMENTS_LOW_D if dim <= 16 else _BLOCK_ELEMENTS_HIGH_D
  else:
    memory = memory_bytes or _device_memory()
    budget = int(_ACCELERATOR_MEMORY_FRACTION * memory) // (
        4 * _ACCELERATOR_ARRAYS_PER_BLOCK)
  rows = budget // max(1, n_temperatures * n_targets)
  if backend != 'cpu' and rows >= n_queries:
    return n_queries  # dense while it fits
  block = 8
  while block * 2 <= rows:
    block *= 2
  return n_queries if block >= n_queries else block


def _device_memory() -> int:
  """Bytes the default device may allocate (a fixed guess if unknown)."""
  stats = jax.devices()[0].memory_stats() or {}
  return int(stats.get('bytes_limit', _ACCELERATOR_DEFAULT_MEMORY))


# ----------------------------------------------------------------- internals


@functools.partial(jax.jit, static_argnums=(6,))
def _drifting_field(x, pos, neg, pos_weights, neg_weights, temperature_scale,
                    spec):
  """Jitted body of `drifting_field` (one compile per shape and spec)."""
  x, pos, neg = (lax.stop_gradient(a) for a in (x, pos, neg))
  w_pos = _weights_or_ones(pos_weights, pos.shape[0], x.dtype)
  w_neg = _weights_or_ones(neg_weights, neg.shape[0], x.dtype)
  targets = jnp.concatenate([pos, neg], axis=0)  # [T, D]
  w = lax.stop_gradient(jnp.concatenate([w_pos, w_neg]))  # [T]
  evaluate = NORMALIZATIONS[spec.normalization].evaluate
  factors = (None if temperature_scale is None
             else 1.0 / jnp.square(jnp.asarray(temperature_scale, x.dtype)))
  fields, scale = evaluate(x, targets, w, spec, factors)
  return _combine_temperatures(fields, scale, spec)


# ----------------------------------------------------------------- internals


@dataclasses.dataclass(frozen=True)
class _Resolved:
  """A `FieldSpec` resolved for one call (kernel object, number of
  positives, block size): static, hashable, the jit's static argument."""
  kernel: kernels_lib.RadialKernel
  temps: tuple[float, ...]
  normalization: str
  mask_self: bool
  n_pos: int
  floor: float
  normalize_distances: bool
  normalize_drift: bool
  block_size: int
  pos_scale: float = 1.0
  neg_scale: float = 1.0
  precision: str = 'highest'
  # Evaluation for an accelerator: one block is called without a scan, and
  # the bidirectional field takes the log-space formulas without the
  # lax.cond (a GPU reads a conditional's predicate back to the host).
  accelerator: bool = False
  sinkhorn_iterations: int = 20
  sinkhorn_tolerance: float = 0.0  # 0: every iteration runs


def _weights_or_ones(weights, n, dtype):
  if weights is None:
    return jnp.ones((n,), dtype)
  return jnp.asarray(weights, dtype)


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
  return NORMALIZATIONS[spec.normalization].block_fields(
      logk, targets, w, spec, col_lse, xb)


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


# Name -> normalisation. `nw`, `row` and `none` need only each block's own
# rows; `bidirectional` needs column sums over every query first.
NORMALIZATIONS: dict[str, Normalization] = {
    'nw': Normalization(_nw_block, _blocked_fields),
    'row': Normalization(_row_block, _blocked_fields),
    'bidirectional': Normalization(_bidirectional_block,
                                   _bidirectional_fields),
    'none': Normalization(_unnormalized_block, _blocked_fields),
    # The conservative fields (`conservative`): gradients of log-smoothed
    # densities or of the MMD witness.
    **{name: Normalization(None, conservative.conservative_fields)
       for name in conservative.CONSERVATIVE},
    # Two-sided entropic couplings (`sinkhorn_field`).
    'sinkhorn': Normalization(None, sinkhorn_field.sinkhorn_fields),
}
