r"""Lai et al.'s Laplace claims at the population level (arXiv 2603.07514).

  python -m experiments.population_study [--sections population,finite_n] \
      [--out docs/figures/population]

Data p = N(delta e_1, s^2 I), generated q = N(0, s^2 I), s = 1, delta = 1;
the field is evaluated at query points drawn from q. `population`: the
exact Laplace `nw` field (`drift_jax.theory.population`) and both of its splits,
the companion split (score part lbar (s_p - s_q) + residual) and the
covariance split (hbar (k_p - k_q) + Cov residual), on a grid of dimension
d = 2 ... 512 and temperature tau / s = 0.01 ... 100, with the rate in d of
each residual fitted for d >= 16. `finite_n`: the same ratios from N
samples of p and q (N = 10^3 ... 10^5, `scores`), against the population
values, with the nearest-neighbour gap r_(2) - r_(1) that the kernel
resolves at small tau.
"""

import json
import os

import jax
import numpy as np
from absl import app
from absl import flags

from drift_jax.theory import population
from drift_jax.theory import scores
from drift_jax.train import reporting
from experiments import cli

FLAGS = flags.FLAGS
DIMS = (2, 4, 8, 16, 32, 64, 128, 256, 512)
TEMPERATURES = tuple(float(t) for t in np.logspace(-2, 2, 9))
NUM_QUERIES = 16
SHIFT = 1.0  # |mu_p - mu_q| in units of s
FINITE_DIMS = (2, 16)
FINITE_NS = (1_000, 10_000, 100_000)


def _define_flags():
  """Defined only when run as a script (importing adds no flags)."""
  flags.DEFINE_list('sections', ['population', 'finite_n'], 'Which parts.')
  flags.DEFINE_string('out', 'docs/figures/population', 'Output folder.')


def _queries(d, seed=0):
  return np.random.default_rng(seed).normal(size=(NUM_QUERIES, d))


def _means(d):
  mu_p = np.zeros(d)
  mu_p[0] = SHIFT
  return mu_p, np.zeros(d)


def ratios(field, score_part, residual, kernel_part, residual_cov):
  """Relative residuals and cosines of one query's field [D] vectors."""
  norm = np.linalg.norm(field)
  return {'residual': float(np.linalg.norm(residual) / norm),
          'residual_cov': float(np.linalg.norm(residual_cov) / norm),
          'cosine': float(field @ score_part
                          / (norm * np.linalg.norm(score_part))),
          'cosine_cov': float(field @ kernel_part
                              / (norm * np.linalg.norm(kernel_part)))}


def _median(rows):
  return {k: float(np.median([r[k] for r in rows])) for k in rows[0]}


def population_grid():
  """[{d, tau, residual, residual_cov, cosine, cosine_cov}] medians over
  the queries."""
  out = []
  for d in DIMS:
    mu_p, mu_q = _means(d)
    for tau in TEMPERATURES:
      rows = []
      for x in _queries(d):
        f = population.laplace_field(x, mu_p, mu_q, 1.0, tau)
        rows.append(ratios(f['field'], f['score_part'], f['residual'],
                           f['kernel_score_part'], f['residual_cov']))
      out.append({'d': d, 'tau': tau, **_median(rows)})
      print(out[-1], flush=True)
  return out


def rates(grid, key, min_d=16):
  """Per tau, the slope of log(key) against log d for d >= min_d."""
  out = {}
  for tau in TEMPERATURES:
    rows = [r for r in grid if r['tau'] == tau and r['d'] >= min_d]
    slope, _ = np.polyfit(np.log([r['d'] for r in rows]),
                          np.log([r[key] for r in rows]), 1)
    out[tau] = float(slope)
  return out


def finite_grid():
  """The same ratios from N samples (float64), and the median gap between
  the nearest and second-nearest data point of a query."""
  out = []
  with jax.enable_x64(True):
    for d in FINITE_DIMS:
      mu_p, mu_q = _means(d)
      queries = _queries(d)
      for n in FINITE_NS:
        rng = np.random.default_rng(n + d)
        pos = mu_p + rng.normal(size=(n, d))
        neg = mu_q + rng.normal(size=(n, d))
        dist = np.sort(np.linalg.norm(pos[None] - queries[:, None], axis=-1),
                       axis=1)
        gap = float(np.median(dist[:, 1] - dist[:, 0]))
        for tau in TEMPERATURES:
          score_part, residual = (np.asarray(a) for a in
                                  scores.laplace_decomposition(
                                      queries, pos, neg, tau))
          cov_parts = [scores.radial_decomposition(queries, side, tau)
                       for side in (pos, neg)]
          (h_p, k_p, _), (h_q, k_q, _) = cov_parts
          hbar = 0.5 * (np.asarray(h_p) + np.asarray(h_q))[:, None]
          kernel_part = hbar * (np.asarray(k_p) - np.asarray(k_q))
          field = score_part + residual
          rows = [ratios(field[i], score_part[i], residual[i],
                         kernel_part[i], field[i] - kernel_part[i])
                  for i in range(len(queries))]
          out.append({'d': d, 'n': n, 'tau': tau, 'nn_gap': gap,
                      **_median(rows)})
  return out


def _plot_population(grid, path):
  plt = reporting.pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(15, 4))
  for d in DIMS:
    rows = [r for r in grid if r['d'] == d]
    taus = [r['tau'] for r in rows]
    axes[0].plot(taus, [r['residual'] for r in rows], marker='o', ms=3,
                 label=f'd={d}')
    axes[1].plot(taus, [r['residual_cov'] for r in rows], marker='o', ms=3)
    axes[2].plot(taus, [1 - r['cosine'] for r in rows], marker='o', ms=3)
  titles = ('companion residual / |V|', 'covariance residual / |V|',
            '1 - cos(V, companion score part)')
  for ax, title in zip(axes, titles, strict=True):
    ax.set(xscale='log', yscale='log', xlabel='tau / s', title=title)
  axes[0].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _plot_finite(pop, fin, path):
  plt = reporting.pyplot()
  fig, axes = plt.subplots(1, len(FINITE_DIMS), figsize=(12, 4))
  for ax, d in zip(axes, FINITE_DIMS, strict=True):
    rows = [r for r in pop if r['d'] == d]
    ax.plot([r['tau'] for r in rows], [r['residual'] for r in rows],
            'k-', lw=2, label='population')
    for n in FINITE_NS:
      mine = [r for r in fin if r['d'] == d and r['n'] == n]
      line, = ax.plot([r['tau'] for r in mine],
                      [r['residual'] for r in mine], marker='o', ms=3,
                      label=f'N = {n:,}')
      ax.axvline(mine[0]['nn_gap'], color=line.get_color(), ls=':')
    ax.set(xscale='log', yscale='log', xlabel='tau / s',
           title=f'd = {d}: companion residual / |V| (dotted: nearest-'
                 'neighbour gap)')
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _table(grid, key):
  head = '| d | ' + ' | '.join(f'{t:g}' for t in TEMPERATURES) + ' |'
  lines = [head, '|---|' + '---|' * len(TEMPERATURES)]
  for d in DIMS:
    rows = {r['tau']: r[key] for r in grid if r['d'] == d}
    lines.append(f'| {d} | ' + ' | '.join(f'{rows[t]:.2g}'
                                          for t in TEMPERATURES) + ' |')
  return '\n'.join(lines)


def run(sections, out):
  cli.check_subset('sections', sections, ('population', 'finite_n'))
  os.makedirs(out, exist_ok=True)
  path = os.path.join(out, 'population.json')
  stored = json.load(open(path)) if os.path.exists(path) else {}
  if 'population' in sections or 'population' not in stored:
    grid = population_grid()
    stored = {'population': grid,
              'rates': {k: rates(grid, k)
                        for k in ('residual', 'residual_cov')}}
  if 'finite_n' in sections:
    stored['finite_n'] = finite_grid()
  with open(path, 'w') as f:
    json.dump(stored, f, indent=1)
  grid = stored['population']
  _plot_population(grid, os.path.join(out, 'residual_vs_tau.png'))
  text = []
  for key in ('residual', 'residual_cov', 'cosine'):
    text.append(f'### {key} (median over {NUM_QUERIES} queries from q)\n\n'
                + _table(grid, key))
  for key, slopes in stored['rates'].items():
    text.append(f'rate in d of {key} (d >= 16), per tau: '
                + ', '.join(f'{t:g}: {v:.2f}' for t, v in slopes.items()))
  if 'finite_n' in stored:
    _plot_finite(grid, stored['finite_n'],
                 os.path.join(out, 'finite_n.png'))
  with open(os.path.join(out, 'population.md'), 'w') as f:
    f.write('\n\n'.join(text) + '\n')
  print('\n\n'.join(text))


def main(argv):
  cli.check_no_arguments(argv)
  run(FLAGS.sections, FLAGS.out)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
