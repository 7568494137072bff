"""Conservative members of the drifting family: fields that are gradients.

The bidirectional Laplace field of Deng et al. is not the gradient of any
function for kernels other than the Gaussian (Franz, Hoffmann, Weiland,
2604.06333). These fields are, for every radial kernel k(x, y) =
exp(l(||x - y||^2)), with data y+ ~ p (positives, weights w) and generated
y- ~ q (negatives, self excluded when `mask_self`):

* `kernel_gradient` (Esteban-Casadevall et al. 2605.10727; Balasubramanian
  2605.22795): V(x) = grad log (p * k)(x) - grad log (q * k)(x)
  = sum_j a_j c_j (y_j - x), a = softmax_j(l_j + log w_j) per side and
  c_j = -2 dl/d(r^2) >= 0. Units 1/length: with the Gaussian kernel
  c = 1 / tau^2 and tau^2 V is the `nw` field (a smoothed score difference,
  Lai et al. 2026, arXiv 2603.07514).
* `sharp_companion` (Laplace only; the score part of
  `scores.laplace_decomposition` without its preconditioner lbar): V =
  grad log (p * psi) - grad log (q * psi), psi(r) = tau (tau + r) e^{-r/tau}
  the companion kernel with grad_x psi(|x - y|) = k(x, y) (y - x); so
  V_p = sum_j w_j k_j (y_j - x) / sum_j w_j psi_j. Units 1/length.
* `mmd` (Gretton et al. 2605.05118, the MMD gradient flow): V(x) =
  grad_x [mean_w k(x, y+) - mean k(x, y-)] = sum_j (w_j / sum w) k_j c_j
  (y_j - x) per side, with no normalisation by the kernel mass.

Distances divided by their batch mean S (`normalize_distances`) make every
kernel a function of r / S; the gradients are then taken in the input
coordinates (so each V carries the 1 / S^2 of the chain rule). Several
temperatures sum (each divided by its RMS with `normalize_drift`).
Evaluation is blocked like the other fields (`blocks`), with the same
numbers dense or blocked.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from drift_jax.fields import blocks
from drift_jax.fields import kernels as kernels_lib

CONSERVATIVE = ('kernel_gradient', 'sharp_companion', 'mmd')


def conservative_fields(x, targets, w, spec, factors=None):
  """Per-temperature fields [K, N, D] and the distance scale S.

  Args:
    x: [N, D] queries; targets: [T, D] positives then negatives; w: [T]
      target weights; spec: the resolved field (`fields._Resolved`), whose
      `normalization` is one of `CONSERVATIVE`; factors: None or [K]
      divisors of each temperature's squared distances (a schedule).
  """
  n = x.shape[0]
  x_blocks, ids, valid, block_sq, scale = blocks.prepare(x, targets, w,
                                                         spec)
  inv = 1.0 / scale**2
  one_temperature = _PER_TEMPERATURE[spec.normalization]

  def block_fields(inputs):
    xb, qid = inputs
    sq = block_sq(xb)
    is_self = (blocks.self_pairs(qid, targets.shape[0], spec.n_pos)
               if spec.mask_self else jnp.zeros(sq.shape, bool))
    return jnp.stack([
        one_temperature(sq, inv if factors is None else inv * factors[k],
                        tau, is_self, targets, w, spec, xb)
        for k, tau in enumerate(spec.temps)])

  fields = blocks.map_blocks(block_fields, (x_blocks, ids))
  return blocks.unblock(fields, n), scale


def log_kernel_and_slope(kernel, sq, inv, tau, is_self):
  """(l, c): log k(r^2 / S^2) and c = -2 dl/d(r^2) in input coordinates,
  both [B, T]; self pairs get l = -inf and c = 0."""
  logk, slope = jax.jvp(lambda s: kernel(s * inv, tau), (sq,),
                        (jnp.ones_like(sq),))
  return (jnp.where(is_self, -jnp.inf, logk),
          jnp.where(is_self, 0.0, -2.0 * slope))


def _sides(a_pos, a_neg, targets, xb, spec):
  """pos_scale sum_j a+_j (y+_j - x) - neg_scale sum_j a-_j (y-_j - x)."""
  mm = functools.partial(kernels_lib.matmul, precision=spec.precision)
  n_pos = spec.n_pos
  v_pos = mm(a_pos, targets[:n_pos]) - jnp.sum(a_pos, -1, keepdims=True) * xb
  v_neg = mm(a_neg, targets[n_pos:]) - jnp.sum(a_neg, -1, keepdims=True) * xb
  return spec.pos_scale * v_pos - spec.neg_scale * v_neg


def _kernel_gradient(sq, inv, tau, is_self, targets, w, spec, xb):
  logk, c = log_kernel_and_slope(spec.kernel, sq, inv, tau, is_self)
  logits, n_pos = logk + jnp.log(w), spec.n_pos
  a_pos = jax.nn.softmax(logits[:, :n_pos], axis=-1) * c[:, :n_pos]
  a_neg = jax.nn.softmax(logits[:, n_pos:], axis=-1) * c[:, n_pos:]
  return _sides(a_pos, a_neg, targets, xb, spec)


def _sharp_companion(sq, inv, tau, is_self, targets, w, spec, xb):
  r = kernels_lib.safe_sqrt(sq * inv)  # distances in units of S
  logk = jnp.where(is_self, -jnp.inf, -r / tau)
  log_psi = jnp.where(is_self, -jnp.inf,
                      jnp.log(tau) + jnp.log(tau + r) - r / tau)
  logits, log_psi_w = logk + jnp.log(w), log_psi + jnp.log(w)
  n_pos = spec.n_pos

  def side(sl):
    norm = jax.nn.logsumexp(log_psi_w[:, sl], axis=-1, keepdims=True)
    return jnp.exp(logits[:, sl] - norm) * inv  # chain rule: 1 / S^2
  return _sides(side(slice(None, n_pos)), side(slice(n_pos, None)),
                targets, xb, spec)


def _mmd(sq, inv, tau, is_self, targets, w, spec, xb):
  logk, c = log_kernel_and_slope(spec.kernel, sq, inv, tau, is_self)
  n_pos = spec.n_pos
  counted = jnp.where(is_self, 0.0, w)  # a sample is not its own neighbour
  mass_pos = jnp.sum(counted[:, :n_pos], -1, keepdims=True)
  mass_neg = jnp.maximum(jnp.sum(counted[:, n_pos:], -1, keepdims=True),
                         jnp.finfo(sq.dtype).tiny)
  kc = jnp.exp(logk) * w * c
  return _sides(kc[:, :n_pos] / mass_pos, kc[:, n_pos:] / mass_neg,
                targets, xb, spec)


_PER_TEMPERATURE = {'kernel_gradient': _kernel_gradient,
                    'sharp_companion': _sharp_companion, 'mmd': _mmd}
