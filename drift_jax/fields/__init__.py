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
  `drift_jax.fields.conservative` (gradients of log-smoothed densities, of the
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

The package, by concept: `spec` (FieldSpec, resolve, drifting_field),
`mean_shift`, `kernel_weighted` (nw, row, none and the bidirectional
block), `bidirectional` (its one-exponential fast path), `temperatures`,
`block_size`, `normalizations` (the registry: a new field is one module
plus one line there) and `resolved` (the types).
"""

from drift_jax.fields.block_size import auto_block_size
from drift_jax.fields.mean_shift import mean_shift
from drift_jax.fields.normalizations import NORMALIZATIONS
from drift_jax.fields.resolved import Normalization
from drift_jax.fields.resolved import _Resolved
from drift_jax.fields.spec import FieldSpec
from drift_jax.fields.spec import drifting_field
from drift_jax.fields.spec import resolve_for_call
from drift_jax.fields.spec import sinkhorn_couplings

__all__ = ['FieldSpec', 'NORMALIZATIONS', 'Normalization', '_Resolved',
           'auto_block_size', 'drifting_field', 'mean_shift',
           'resolve_for_call', 'sinkhorn_couplings']
