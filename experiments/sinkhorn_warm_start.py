r"""What warm-starting Sinkhorn's potentials across training steps could
save, measured before building it.

A drifting step draws a fresh generated batch x and a fresh data batch y,
so the previous step's potentials index other points. The one warm start
that carries over is the potential as a function: the new column
potentials from the previous rows' (the c-transform, g(y) = log b -
logsumexp_i(log k(x_prev_i, y) + f_prev_i)), one extra column pass. This
counts the Sinkhorn iterations (`drift_jax.fields.sinkhorn_field`'s
updates, uniform marginals, the Laplace kernel on distances over their
mean, as the field's recipe) until max |f_new - f| falls below a
tolerance, from zero potentials (cold) and from the c-transform of the
previous step's converged potentials (warm), on successive batches of the
checkerboard (data) and of the data shifted by `--gap` in units of its
spread (a generator that has not converged).

  python -m experiments.sinkhorn_warm_start
"""

from __future__ import annotations

import jax
import numpy as np
from absl import app
from absl import flags
from scipy.special import logsumexp

from drift_jax.theory import distributions

_N = flags.DEFINE_integer('n', 256, 'Batch size (queries and targets).')
_STEPS = flags.DEFINE_integer('steps', 5, 'Successive batches per cell.')
_GAP = flags.DEFINE_float('gap', 0.3, 'Generated = data + gap x its std.')
TEMPERATURES = (0.02, 0.05, 0.2)  # the authors' normalised recipe
TOLERANCES = (1e-2, 1e-3)
MAX_ITERATIONS = 5000


def log_kernel(x, y, tau, scale):
  d = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
  return -d / (scale * tau)


def iterations(logk, g, tol):
  """(f, g, iterations) of Sinkhorn from column potentials `g` until the
  row potentials move less than `tol` (uniform marginals)."""
  n, t = logk.shape
  f, it = np.zeros(n), 0
  while it < MAX_ITERATIONS:
    f_new = -np.log(n) - logsumexp(logk + g[None], axis=1)
    change, f = np.max(np.abs(f_new - f)), f_new
    g = -np.log(t) - logsumexp(logk + f[:, None], axis=0)
    it += 1
    if change < tol:
      break
  return f, g, it


def cell(draw, tau, tol):
  """Mean cold and warm iterations over `--steps` successive batches."""
  x, y = draw()
  scale = np.mean(np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1)))
  f, _, _ = iterations(log_kernel(x, y, tau, scale), np.zeros(len(y)), 1e-9)
  cold, warm = [], []
  for _ in range(_STEPS.value):
    x_new, y_new = draw()
    logk = log_kernel(x_new, y_new, tau, scale)
    cold.append(iterations(logk, np.zeros(len(y_new)), tol)[2])
    g0 = -np.log(len(y_new)) - logsumexp(
        log_kernel(x, y_new, tau, scale) + f[:, None], axis=0)
    f_new, _, it = iterations(logk, g0, tol)
    warm.append(it)
    x, f = x_new, f_new
  return float(np.mean(cold)), float(np.mean(warm))


def main(argv):
  del argv
  sampler = distributions.toy_sampler('checkerboard')
  keys = iter(jax.random.split(jax.random.key(0), 1000))
  n = _N.value

  def draw():
    y = np.asarray(sampler(next(keys), n), np.float64)
    x = np.asarray(sampler(next(keys), n), np.float64)
    return x + _GAP.value * x.std(0), y

  print('| tau | tolerance | cold iterations | warm iterations | saved |')
  print('|---|---|---|---|---|')
  for tau in TEMPERATURES:
    for tol in TOLERANCES:
      cold, warm = cell(draw, tau, tol)
      print(f'| {tau:g} | {tol:g} | {cold:.1f} | {warm:.1f} | '
            f'{1 - warm / cold:.0%} |', flush=True)


if __name__ == '__main__':
  app.run(main)
