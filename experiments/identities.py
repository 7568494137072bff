r"""Prints the worst relative error of every exact identity drift_jax relies on.

    python -m experiments.identities

Each row compares a drift_jax function with an independent reference and
fails (exit code 1) when the error exceeds its tolerance:
* float64 rows: exact identities, so only round-off may remain;
* float32 rows (blocked vs dense): a different summation order, 1e-5.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app

from drift_jax import fields
from drift_jax.theory import scores
from experiments import cli
from tests import references


def _rel_err(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _normal(seed, shape, shift=0.0, dtype=jnp.float64):
  return jax.random.normal(jax.random.PRNGKey(seed), shape, dtype) + shift


def gaussian_identity() -> float:
  """nw Gaussian field vs tau^2 (grad log p_tau - grad log q_tau), jax.grad."""
  worst = 0.0
  for dim in (2, 5, 64):
    tau = 0.6 * np.sqrt(dim)
    x, pos, neg = (_normal(s, (n, dim), sh) for s, n, sh in
                   ((0, 200, 0.0), (1, 300, 0.7), (2, 250, -0.3)))
    v = fields.drifting_field(x, pos, neg, kernel='gaussian', temperature=tau,
                              normalization='nw', mask_self=False)
    grad_log = jax.vmap(jax.grad(lambda z, y, t: jax.nn.logsumexp(
        -jnp.sum((z - y)**2, -1) / (2 * t**2))), in_axes=(0, None, None))
    expected = tau**2 * (grad_log(x, pos, tau) - grad_log(x, neg, tau))
    worst = max(worst, _rel_err(v, expected))
  return worst


def laplace_decomposition() -> float:
  x, pos = _normal(0, (200, 16)), _normal(1, (300, 16), 0.5)
  score_part, residual = scores.laplace_decomposition(x, pos, x, 2.0,
                                                      mask_self=True)
  v = fields.drifting_field(x, pos, x, temperature=2.0, normalization='nw')
  return _rel_err(score_part + residual, v)


def bidirectional_vs_algorithm2() -> float:
  rng = np.random.default_rng(0)
  x, pos = rng.normal(size=(300, 3)), rng.normal(size=(400, 3)) + 0.5
  return max(_rel_err(fields.drifting_field(
      jnp.asarray(x), jnp.asarray(pos), jnp.asarray(x), temperature=t),
      references.algorithm2(x, pos, x, t)) for t in (0.05, 0.3, 2.0))


def recipe_vs_released_code() -> float:
  rng = np.random.default_rng(1)
  x, pos = rng.normal(size=(256, 8)), rng.normal(size=(320, 8)) + 0.3
  w_pos, w_neg = rng.uniform(0.5, 1.5, 320), rng.uniform(0.5, 1.5, 256)
  worst = 0.0
  for floor in (0.0, 1e-6):
    v = fields.drifting_field(
        jnp.asarray(x), jnp.asarray(pos), jnp.asarray(x),
        temperature=(0.02, 0.05, 0.2), pos_weights=jnp.asarray(w_pos),
        neg_weights=jnp.asarray(w_neg), normalize_distances=True,
        normalize_drift=True, affinity_floor=floor)
    ref, s = references.released_drift(x, pos, w_pos, w_neg,
                                       (0.02, 0.05, 0.2), floor)
    worst = max(worst, _rel_err(v, ref * s))
  return worst


def blocked_vs_dense() -> float:
  worst = 0.0
  x = _normal(0, (1000, 3), dtype=jnp.float32)
  pos = _normal(1, (777, 3), 0.5, jnp.float32)
  for norm in fields.NORMALIZATIONS:
    for recipe in (dict(), dict(temperature=(0.02, 0.05, 0.2),
                                normalize_distances=True,
                                normalize_drift=True)):
      dense = fields.drifting_field(x, pos, x, normalization=norm, **recipe)
      for block in (1, 128, 999):
        blocked = fields.drifting_field(x, pos, x, normalization=norm,
                                        block_size=block, **recipe)
        worst = max(worst, _rel_err(blocked, dense))
  return worst


CHECKS = (
    ('Gaussian nw field = tau^2 score difference (d=2,5,64)', True,
     gaussian_identity, 1e-9),
    ('Laplace score part + residual = nw field', True,
     laplace_decomposition, 1e-10),
    ('bidirectional = NumPy Algorithm 2 (tau=0.05,0.3,2)', True,
     bidirectional_vs_algorithm2, 1e-10),
    ('3-temperature recipe = released-code reference', True,
     recipe_vs_released_code, 1e-9),
    ('blocked = dense, all normalizations (N=1000)', False,
     blocked_vs_dense, 1e-5),
)


def main(argv) -> int:
  cli.check_no_arguments(argv)
  print(f'{"identity":56s} {"dtype":8s} {"worst rel err":>13s} {"tol":>7s}')
  failed = 0
  for name, use_x64, check, tol in CHECKS:
    with jax.enable_x64(use_x64):
      err = check()
    ok = err <= tol
    failed += not ok
    print(f'{name:56s} {"float64" if use_x64 else "float32":8s} '
          f'{err:13.2e} {tol:7.0e}  {"ok" if ok else "FAILED"}')
  print('all identities hold' if not failed else f'{failed} check(s) FAILED')
  return int(bool(failed))


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(main(argv)))
