"""Independent float64 NumPy references of the authors' drifting field.

Written from Deng et al. 2026 (Algorithm 2 and App. A.6, and the released
`drift_loss.py` of github.com/lambertae/drifting), with no code
shared with `drift_jax`, so that agreement means something.
"""

import numpy as np


def softmax(z, axis):
  z = z - np.max(z, axis=axis, keepdims=True)
  e = np.exp(z)
  return e / np.sum(e, axis=axis, keepdims=True)


def cdist(a, b):
  return np.sqrt(np.sum((a[:, None, :] - b[None, :, :])**2, axis=-1))


def algorithm2(x, y_pos, y_neg, temp):
  """Deng et al. Algorithm 2, written out in float64 NumPy."""
  n = x.shape[0]
  dist_pos = cdist(x, y_pos)
  dist_neg = cdist(x, y_neg) + np.eye(n) * 1e6  # self-mask
  logit = np.concatenate([-dist_pos / temp, -dist_neg / temp], axis=1)
  a = np.sqrt(softmax(logit, -1) * softmax(logit, -2))
  a_pos, a_neg = a[:, :len(y_pos)], a[:, len(y_pos):]
  w_pos = a_pos * a_neg.sum(1, keepdims=True)
  w_neg = a_neg * a_pos.sum(1, keepdims=True)
  return w_pos @ y_pos - w_neg @ y_neg


def released_drift(x, y_pos, w_pos, w_neg, temps, floor):
  """App. A.6 recipe as in the authors' released loss, float64 NumPy.

  Scaled coordinates, weighted mean-distance normalisation, +100 self-mask
  on normalised distances, clipped geometric-mean affinities times target
  weights, per-temperature RMS normalisation. Returns the drift in the
  authors' scaled coordinates and the coordinate scale s = S / sqrt(D).
  """
  n, dim = x.shape
  targets = np.concatenate([x, y_pos])  # negatives are the generated batch
  w = np.concatenate([w_neg, w_pos])
  dist = cdist(x, targets)
  scale = np.mean(dist * w[None, :]) / np.mean(w)
  s = scale / np.sqrt(dim)
  x_s, t_s = x / s, targets / s
  dist_n = dist / scale
  dist_n[:, :n] += 100.0 * np.eye(n)
  total = np.zeros_like(x)
  for temp in temps:
    logits = -dist_n / temp
    aff = np.sqrt(np.maximum(
        softmax(logits, -1) * softmax(logits, -2), floor)) * w
    aff_neg, aff_pos = aff[:, :n], aff[:, n:]
    coeff = np.concatenate([-aff_neg * aff_pos.sum(1, keepdims=True),
                            aff_pos * aff_neg.sum(1, keepdims=True)], 1)
    force = coeff @ t_s - coeff.sum(1, keepdims=True) * x_s
    total += force / np.sqrt(np.mean(force**2))
  return total, s
