r"""Lai et al.'s Laplace claims at the population level, with intervals
(arXiv 2603.07514; the restatement of docs/reproduction.md §2).

  python -m experiments.population_queries [--queries 500] \
      [--setups shifted,wider] [--processes 2] [--out results/population] \
      [--summary_only]

For each set-up, data p = N(delta e_1, s_p^2 I) and generated q = N(0,
s_q^2 I), and each (d, tau) cell, the exact Laplace `nw` field
(`drift_jax.theory.population.laplace_field`) at `--queries` points drawn
from q, split two ways (companion; covariance = scale mismatch + true
covariance C_p - C_q). Per query it stores |V| and each part's norm
relative to |V|, and the cosines of V with both score parts. Each cell is
one file `cells/<setup>_d<d>_tau<tau>.npy` written when it finishes, so a
stopped run resumes at its next cell.

Reported per cell: the median over queries with its distribution-free
95 % interval (`scipy.stats.quantile_test`), the pooled ratio
sqrt(sum |part|^2 / sum |V|^2) with a bootstrap interval
(`scipy.stats.bootstrap`), and the cosine's median, 5th percentile and
|V|-weighted mean; per tau, the rate in d (the slope of log median against
log d for d >= 16) with a bootstrap interval that resamples the queries of
every d.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os

import numpy as np
from absl import app
from absl import flags
from scipy import stats

from drift_jax.theory import population
from drift_jax.train import reporting
from drift_jax.train import workdir as workdir_lib
from experiments import cli
from experiments import population_study

FLAGS = flags.FLAGS
DIMS = (2, 8, 16, 32, 128, 512)
TEMPERATURES = (0.01, 0.1, 0.32, 1.0, 3.2, 10.0, 100.0)
# delta = |mu_p - mu_q| and the two sides' scales, in units of s_q.
SETUPS = {'shifted': {'delta': 1.0, 's_p': 1.0, 's_q': 1.0},
          'wider': {'delta': 1.0, 's_p': 1.5, 's_q': 1.0}}
# The per-query columns of a cell file.
COLUMNS = ('norm', 'residual', 'residual_cov', 'mismatch', 'covariance',
           'cosine', 'cosine_cov')
RATIOS = ('residual', 'residual_cov', 'mismatch', 'covariance')
MIN_RATE_D = 16
BOOTSTRAP = 2000


def _define_flags():
  """Defined only when run as a script (importing adds no flags)."""
  flags.DEFINE_integer('queries', 500, 'Query points per (d, tau) cell.')
  flags.DEFINE_list('setups', list(SETUPS), f'Which of {list(SETUPS)}.')
  flags.DEFINE_integer('processes', 2, 'Worker processes.')
  flags.DEFINE_string('out', 'results/population', 'Output folder.')
  flags.DEFINE_bool('summary_only', False, 'Summarise the cells computed '
                    'so far; compute none.')


def query_row(x, setup, tau) -> np.ndarray:
  """One query's `COLUMNS` (float64)."""
  d = x.shape[0]
  mu_p = np.zeros(d)
  mu_p[0] = setup['delta']
  f = population.laplace_field(x, mu_p, np.zeros(d), setup['s_p'], tau,
                               s_q=setup['s_q'])
  norm = np.linalg.norm(f['field'])
  r = population_study.ratios(f['field'], f['score_part'], f['residual'],
                              f['kernel_score_part'], f['residual_cov'])
  return np.array([norm, r['residual'], r['residual_cov'],
                   np.linalg.norm(f['mismatch']) / norm,
                   np.linalg.norm(f['covariance']) / norm,
                   r['cosine'], r['cosine_cov']])


def queries(setup, d, n, seed=0) -> np.ndarray:
  """n query points drawn from q = N(0, s_q^2 I_d)."""
  return setup['s_q'] * np.random.default_rng(seed).normal(size=(n, d))


def cell_path(out, name, d, tau) -> str:
  return os.path.join(out, 'cells', f'{name}_d{d}_tau{tau:g}.npy')


def run_cells(out, names, n, processes) -> None:
  """Computes every missing cell file (resumable, one file per cell)."""
  os.makedirs(os.path.join(out, 'cells'), exist_ok=True)
  with multiprocessing.Pool(processes) as pool:
    for name in names:
      for d in DIMS:
        for tau in TEMPERATURES:
          path = cell_path(out, name, d, tau)
          if os.path.exists(path) and len(np.load(path)) >= n:
            continue
          row = functools.partial(query_row, setup=SETUPS[name], tau=tau)
          values = np.stack(pool.map(row, queries(SETUPS[name], d, n),
                                     chunksize=8))
          np.save(path + '.tmp.npy', values)
          os.replace(path + '.tmp.npy', path)
          print(f'{name} d={d} tau={tau:g}: median residual '
                f'{np.median(values[:, 1]):.3g}', flush=True)


def load_cell(out, name, d, tau) -> dict | None:
  path = cell_path(out, name, d, tau)
  if not os.path.exists(path):
    return None
  return dict(zip(COLUMNS, np.load(path).T, strict=True))


def median_interval(x) -> tuple[float, float, float]:
  """(median, lo, hi): the order-statistic 95 % interval of the median."""
  ci = stats.quantile_test(x, p=0.5).confidence_interval(0.95)
  return float(np.median(x)), float(ci.low), float(ci.high)


def pooled(ratio, norm) -> float:
  """sqrt(sum |part|^2 / sum |V|^2): the part's share of the field's
  energy over all queries (large fields weigh more)."""
  return float(np.sqrt(np.sum((ratio * norm)**2) / np.sum(norm**2)))


def pooled_interval(ratio, norm, seed=0) -> tuple[float, float, float]:
  result = stats.bootstrap((ratio, norm), pooled, paired=True,
                           vectorized=False, n_resamples=BOOTSTRAP,
                           method='percentile',
                           rng=np.random.default_rng(seed))
  ci = result.confidence_interval
  return pooled(ratio, norm), float(ci.low), float(ci.high)


def cosine_summary(cell, key='cosine') -> dict:
  c, w = cell[key], cell['norm']
  return {'median': float(np.median(c)),
          'p05': float(np.percentile(c, 5)), 'min': float(np.min(c)),
          'weighted': float(np.sum(w * c) / np.sum(w))}


def summarise_cell(cell) -> dict:
  out = {'queries': len(cell['norm'])}
  for key in RATIOS:
    out[key] = {'median': median_interval(cell[key]),
                'pooled': pooled_interval(cell[key], cell['norm'])}
  out['cosine'] = cosine_summary(cell)
  out['cosine_cov'] = cosine_summary(cell, 'cosine_cov')
  return out


def rate(cells_by_d: dict, key, seed=0) -> tuple[float, float, float]:
  """(slope, lo, hi) of log median(key) against log d over the dims held,
  d >= MIN_RATE_D; the interval resamples each d's queries (percentile
  bootstrap, `BOOTSTRAP` draws)."""
  dims = sorted(d for d in cells_by_d if d >= MIN_RATE_D)
  if len(dims) < 2:
    return (float('nan'),) * 3
  logd = np.log(dims)
  rng = np.random.default_rng(seed)

  def slope(medians):
    return np.polyfit(logd, np.log(medians), 1)[0]

  point = slope([np.median(cells_by_d[d][key]) for d in dims])
  draws = []
  for _ in range(BOOTSTRAP):
    draws.append(slope([np.median(rng.choice(cells_by_d[d][key],
                                             len(cells_by_d[d][key])))
                        for d in dims]))
  lo, hi = np.percentile(draws, [2.5, 97.5])
  return float(point), float(lo), float(hi)


def summarise(out, names) -> dict:
  """{setup: {'cells': [{d, tau, ...}], 'rates': {key: {tau: (slope, lo,
  hi)}}}} over the cells computed so far."""
  result = {}
  for name in names:
    cells, rows = {}, []
    for d in DIMS:
      for tau in TEMPERATURES:
        cell = load_cell(out, name, d, tau)
        if cell is not None:
          cells[(d, tau)] = cell
          rows.append({'d': d, 'tau': tau, **summarise_cell(cell)})
    rates = {key: {tau: rate({d: c for (d, t), c in cells.items()
                              if t == tau}, key)
                   for tau in TEMPERATURES}
             for key in RATIOS}
    result[name] = {'setup': SETUPS[name], 'cells': rows, 'rates': rates}
  return result


def _fmt(triple) -> str:
  value, lo, hi = triple
  return f'{value:.2g} [{lo:.2g}, {hi:.2g}]'


def _grid_table(rows, cell_text) -> str:
  by = {(r['d'], r['tau']): r for r in rows}
  lines = ['| d | ' + ' | '.join(f'τ = {t:g}' for t in TEMPERATURES) + ' |',
           '|---|' + '---|' * len(TEMPERATURES)]
  for d in DIMS:
    lines.append(f'| {d} | ' + ' | '.join(
        cell_text(by[(d, t)]) if (d, t) in by else '—'
        for t in TEMPERATURES) + ' |')
  return '\n'.join(lines)


TITLES = {'residual': 'companion residual / |V|',
          'residual_cov': 'covariance residual / |V|',
          'mismatch': 'scale-mismatch term ½(h_p − h_q)(k_p + k_q) / |V|',
          'covariance': 'true covariance part (C_p − C_q) / |V|'}


def markdown(summary, n) -> str:
  text = []
  for name, s in summary.items():
    setup = s['setup']
    text.append(f'## {name}: p = N({setup["delta"]:g} e₁, '
                f'{setup["s_p"]:g}² I), q = N(0, {setup["s_q"]:g}² I), '
                f'{n} queries from q per cell')
    for key in RATIOS:
      text.append(f'### {TITLES[key]}: median [95 % interval]\n\n'
                  + _grid_table(s['cells'],
                                lambda r, k=key: _fmt(r[k]['median'])))
      text.append('Pooled (sqrt Σ|part|² / Σ|V|²) [bootstrap 95 %]:\n\n'
                  + _grid_table(s['cells'],
                                lambda r, k=key: _fmt(r[k]['pooled'])))
    text.append('### cos(V, companion score part): median / 5th percentile'
                ' / |V|-weighted (worst)\n\n' + _grid_table(
                    s['cells'], lambda r: '{median:.3f} / {p05:.3f} / '
                    '{weighted:.3f} ({min:.2f})'.format(**r['cosine'])))
    lines = ['| part | ' + ' | '.join(f'τ = {t:g}' for t in TEMPERATURES)
             + ' |', '|---|' + '---|' * len(TEMPERATURES)]
    for key in RATIOS:
      lines.append(f'| {TITLES[key].split(" / ")[0]} | ' + ' | '.join(
          _fmt(s['rates'][key][t]) for t in TEMPERATURES) + ' |')
    text.append(f'### Rate in d (slope of log median, d ≥ {MIN_RATE_D}) '
                '[bootstrap 95 %]\n\n' + '\n'.join(lines))
  return '\n\n'.join(text) + '\n'


def plot(summary, path) -> None:
  plt = reporting.pyplot()
  fig, axes = plt.subplots(len(summary), 4, figsize=(18, 4 * len(summary)),
                           squeeze=False)
  for row, (name, s) in zip(axes, summary.items(), strict=True):
    for ax, key in zip(row, ('residual', 'mismatch', 'covariance'),
                       strict=False):
      for d in DIMS:
        cells = [c for c in s['cells'] if c['d'] == d]
        if not cells:
          continue
        taus = [c['tau'] for c in cells]
        med = np.array([c[key]['median'] for c in cells])
        line, = ax.plot(taus, med[:, 0], marker='o', ms=3, label=f'd={d}')
        ax.fill_between(taus, med[:, 1], med[:, 2], alpha=0.2,
                        color=line.get_color())
      ax.set(xscale='log', yscale='log', xlabel='τ / s_q',
             title=f'{name}: {TITLES[key]}')
    ax = row[3]
    for d in DIMS:
      cells = [c for c in s['cells'] if c['d'] == d]
      if cells:
        ax.plot([c['tau'] for c in cells],
                [1 - c['cosine']['p05'] for c in cells], marker='o', ms=3)
    ax.set(xscale='log', yscale='log', xlabel='τ / s_q',
           title=f'{name}: 1 − cos, 5th percentile of queries')
    row[0].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv):
  cli.check_no_arguments(argv)
  cli.check_subset('setups', FLAGS.setups, tuple(SETUPS))
  if FLAGS.queries < 2 or FLAGS.processes < 1:
    raise app.UsageError('--queries must be >= 2 and --processes >= 1.')
  if not FLAGS.summary_only:
    run_cells(FLAGS.out, FLAGS.setups, FLAGS.queries, FLAGS.processes)
  summary = summarise(FLAGS.out, FLAGS.setups)
  workdir_lib.write_atomic(os.path.join(FLAGS.out, 'summary.json'),
                           json.dumps(summary, indent=1))
  text = markdown(summary, FLAGS.queries)
  with open(os.path.join(FLAGS.out, 'population.md'), 'w') as f:
    f.write(text)
  plot(summary, os.path.join(FLAGS.out, 'population.png'))
  print(text)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
