r"""The drifting family's published claims, checked by experiment
(docs/reproduction.md §11).

  python -m experiments.family [--sections asymmetry,mass_transport,...] \
      [--workdir runs/family] [--out docs/figures/family]

Sections (each one claim; the training ones are sweeps through the runner,
`sweeps/family_*.py`, run by `experiments.ablate` and so resumable: a
rerun skips finished runs and resumes interrupted ones):
  asymmetry       non-conservativeness (Franz et al. 2604.06333): the
                  antisymmetric part of each field's Jacobian relative to
                  its symmetric part, on a 2-D mixture, every kernel, three
                  temperatures, float64, field API only (seconds);
  mass_transport  mass moved between separated modes (Gretton et al.
                  2605.05118), separation / tau from 40 to 2 (~20 min);
  transport_law   steps until the mass moves against separation / tau,
                  the exponential rate fitted per field (~1 h);
  temperature     temperature sensitivity (He et al. 2603.12366): tau over
                  two decades, checkerboard and 8-Gaussian ring (~25 min);
  annealing       the Gaussian bottleneck and bandwidth annealing (Turan &
                  Ovsjanikov 2603.09936), quality against step (~6 min).
Each section writes OUT/SECTION.md (its table), OUT/SECTION.json and its
figures OUT/SECTION*.png; the sweeps' own outputs (results.csv, samples,
curves, fields) stay in WORKDIR/SECTION.
"""

import json
import math
import os
import shutil
import statistics

import jax
import jax.numpy as jnp
import numpy as np
from absl import app
from absl import flags

from drift_jax import fields
from drift_jax.fields import kernels
from drift_jax.studies import sweep
from drift_jax.theory import distributions
from drift_jax.train import reporting
from experiments import cli

FLAGS = flags.FLAGS
SWEEPS = 'sweeps'


def _define_flags():
  """Defined only when run as a script (importing adds no flags)."""
  flags.DEFINE_list('sections', list(SECTIONS), 'Which sections to run.')
  flags.DEFINE_string('workdir', 'runs/family', 'Directory of the sweeps\' '
                      'runs (resumable).')
  flags.DEFINE_string('out', 'docs/figures/family', 'Where the tables and '
                      'figures go.')


# ---------------------------------------------------------------- asymmetry

ASYMMETRY_TEMPERATURES = (0.1, 0.3, 1.0)
ASYMMETRY_SEEDS = 2


def _asymmetry_sets(seed, n_data=512, n_gen=512, n_queries=64):
  """Data from the 8-Gaussian ring; negatives and queries from one
  off-centre blob (disjoint draws, so no query is its own negative)."""
  k_data, k_gen, k_query = jax.random.split(jax.random.key(seed), 3)
  data = distributions.toy_sampler('eight_gaussians')(k_data, n_data)

  def blob(key, n):
    return 0.4 * jax.random.normal(key, (n, 2)) + jnp.array([0.3, 0.1])
  return (np.asarray(data, np.float64), np.asarray(blob(k_gen, n_gen),
                                                   np.float64),
          np.asarray(blob(k_query, n_queries), np.float64))


def jacobian_asymmetry(spec, queries, pos, neg, step=1e-5):
  """Per query, |J - J^T|_F / |J + J^T|_F with J = dV(x_i)/dx_i by central
  differences (float64: error ~1e-10 relative), the other queries held
  fixed (for `bidirectional` and `sinkhorn` the queries share column
  normalisations, so V_i depends on them too). 0 for a gradient field; [N].
  Not `jax.jacfwd`: the field is a stop-gradient target."""
  queries = jnp.asarray(queries)
  n, dim = queries.shape

  def own_column(i, direction):
    def at(sign):
      moved = queries.at[i].add(sign * step * direction)
      return spec(moved, pos, neg)[i]
    return (at(1.0) - at(-1.0)) / (2 * step)

  columns = [jax.vmap(own_column, in_axes=(0, None))(jnp.arange(n), e)
             for e in jnp.eye(dim)]
  own = jnp.stack(columns, axis=-1)  # [N, D, D]: d V_i / d x_i
  anti = jnp.linalg.norm(own - jnp.swapaxes(own, 1, 2), axis=(1, 2))
  sym = jnp.linalg.norm(own + jnp.swapaxes(own, 1, 2), axis=(1, 2))
  return np.asarray(anti / sym)


def _kernels_of(normalization):
  # The companion kernel psi is the Laplace kernel's (conservative.py).
  return (('laplace',) if normalization == 'sharp_companion'
          else tuple(kernels.KERNELS))


def asymmetry(workdir, out):
  del workdir  # no training
  results = []
  with jax.enable_x64(True):
    for seed in range(ASYMMETRY_SEEDS):
      pos, neg, queries = _asymmetry_sets(seed)
      for normalization in fields.NORMALIZATIONS:
        for kernel in _kernels_of(normalization):
          for tau in ASYMMETRY_TEMPERATURES:
            spec = fields.FieldSpec(kernel=kernel, temperatures=(tau,),
                                    normalization=normalization,
                                    mask_self=False)
            ratio = jacobian_asymmetry(spec, queries, pos, neg)
            results.append(dict(normalization=normalization, kernel=kernel,
                                temperature=tau, seed=seed,
                                median=float(np.median(ratio)),
                                max=float(np.max(ratio))))
  convergence = _sinkhorn_convergence()
  _write_json(out, 'asymmetry', {'fields': results,
                                 'sinkhorn_gaussian_0.1': convergence})
  table = (_asymmetry_table(results)
           + '\n\nSinkhorn, Gaussian kernel, tau 0.1, by iterations: '
           + ', '.join(f'{it}: {v:.1e}' for it, v in convergence.items()))
  _write_text(out, 'asymmetry.md', table)
  _plot_asymmetry(results, os.path.join(out, 'asymmetry.png'))
  return table


def _sinkhorn_convergence(iterations=(20, 200, 1000), tau=0.1):
  """With the Gaussian kernel (a squared-distance cost) the converged
  two-sided field is the gradient of the Sinkhorn potentials: its
  asymmetry should fall with the iteration count (seed 0's draw)."""
  pos, neg, queries = _asymmetry_sets(0)
  out = {}
  with jax.enable_x64(True):
    for it in iterations:
      spec = fields.FieldSpec(kernel='gaussian', temperatures=(tau,),
                              normalization='sinkhorn', mask_self=False,
                              sinkhorn_iterations=it)
      out[it] = float(np.median(jacobian_asymmetry(spec, queries, pos,
                                                   neg)))
  return out


def _asymmetry_cell(results, **where):
  values = [r['median'] for r in results
            if all(r[k] == v for k, v in where.items())]
  return statistics.fmean(values) if values else None


def _asymmetry_table(results):
  """Rows: normalisations; columns: kernel x temperature; cells: the
  median over queries of |A| / |S|, mean over the draws."""
  columns = [(k, t) for k in kernels.KERNELS for t in ASYMMETRY_TEMPERATURES]
  lines = ['| field | ' + ' | '.join(f'{k} {t}' for k, t in columns) + ' |',
           '|---|' + '---|' * len(columns)]
  for normalization in fields.NORMALIZATIONS:
    cells = []
    for kernel, tau in columns:
      value = _asymmetry_cell(results, normalization=normalization,
                              kernel=kernel, temperature=tau)
      cells.append('-' if value is None else f'{value:.1e}')
    lines.append(f'| {normalization} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def _plot_asymmetry(results, path):
  plt = reporting.pyplot()
  fig, axes = plt.subplots(1, len(kernels.KERNELS), sharey=True,
                           figsize=(3.3 * len(kernels.KERNELS), 3.4))
  for ax, kernel in zip(axes, kernels.KERNELS, strict=True):
    for i, normalization in enumerate(fields.NORMALIZATIONS):
      ys = [_asymmetry_cell(results, normalization=normalization,
                            kernel=kernel, temperature=t)
            for t in ASYMMETRY_TEMPERATURES]
      if ys[0] is None:
        continue
      ax.plot(ASYMMETRY_TEMPERATURES, np.maximum(ys, 1e-17), marker='o',
              ms=3, label=normalization, color=f'C{i}')
    ax.set(xscale='log', yscale='log', title=f'{kernel} kernel',
           xlabel='temperature tau')
  axes[0].set_ylabel('|J - J^T| / |J + J^T| (median over queries)')
  axes[0].legend(fontsize=6)  # the Laplace panel has every field
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


# ----------------------------------------------------------- the sweeps


def _run_sweep(section, workdir):
  """Runs or resumes sweeps/family_SECTION.py; (its rows, its folder)."""
  sweep_dir = os.path.join(workdir, section)
  return (sweep.run(os.path.join(SWEEPS, f'family_{section}.py'),
                     sweep_dir), sweep_dir)


def _final(run_dir, metric):
  """`metric` at the last evaluation of a run."""
  values = [r[metric] for r in reporting.read_metrics(run_dir)
            if metric in r]
  return float(values[-1]) if values else float('nan')


def _group(rows, keys, value):
  """{tuple of keys: [value(row) per seed]}."""
  groups = {}
  for r in rows:
    groups.setdefault(tuple(r[k] for k in keys), []).append(value(r))
  return groups


def _mean_std(values):
  finite = [v for v in values if math.isfinite(v)]
  if not finite:
    return float('nan'), float('nan')
  return (statistics.fmean(finite),
          statistics.stdev(finite) if len(finite) > 1 else 0.0)


def _copy(sweep_dir, out, section, names, max_side=1400):
  """Copies sweep figures into OUT, the large sample grids shrunk to
  `max_side` pixels on their longer side (they are committed with the
  report)."""
  from PIL import Image
  for name in names:
    source = os.path.join(sweep_dir, name)
    if not os.path.exists(source):
      continue
    target = os.path.join(out, f'{section}_{name}')
    with Image.open(source) as image:
      scale = max_side / max(image.size)
      if scale >= 1:
        shutil.copy(source, target)
        continue
      size = (round(image.width * scale), round(image.height * scale))
      image.resize(size, Image.LANCZOS).save(target, optimize=True)


MASS_BALANCE = 'eval/min_mode_mass'
SEPARATION = 2.0  # distributions.two_mode's default


def mass_transport(workdir, out):
  rows, sweep_dir = _run_sweep('mass_transport', workdir)
  groups = _group(rows, ('field.normalization', 'field.temperatures'),
                  lambda r: (_final(r['run_dir'], MASS_BALANCE),
                             float(r['eval/energy_distance_ratio'])))
  results, lines = [], [
      '| field | separation / tau | tau | min mode mass at 1,000 steps '
      '(per seed) | ED / floor (mean +- std) |', '|---|---|---|---|---|']
  for (normalization, tau), values in groups.items():
    masses = [m for m, _ in values]
    ed_mean, ed_std = _mean_std([e for _, e in values])
    results.append(dict(normalization=normalization, temperature=float(tau),
                        min_mode_mass=masses, ed_ratio=[e for _, e in values]))
    lines.append(f'| {normalization} | {SEPARATION / float(tau):g} | {tau} | '
                 + ', '.join(f'{m:.2f}' for m in masses)
                 + f' | {ed_mean:.3g} +- {ed_std:.2g} |')
  _write_json(out, 'mass_transport', results)
  table = '\n'.join(lines)
  _write_text(out, 'mass_transport.md', table)
  _plot_by_temperature(
      results, 'min_mode_mass', os.path.join(out, 'mass_transport.png'),
      x=lambda r: SEPARATION / r['temperature'], xlabel='separation / tau',
      ylabel='mass on the lighter mode after 1,000 steps', log_y=False)
  _copy(sweep_dir, out, 'mass_transport', ('samples.png',))
  return table


TRANSPORTED = 0.25  # the lighter mode holds a quarter of the mass
FIT_EVALUATIONS = 4  # `_signal_limited`
# Predicted growth rate b of log(steps) in sep/tau: the far mode's signal
# is e^(-sep/tau) under a one-sided softmax, e^(-sep/(2 tau)) under Alg. 2.
PREDICTED_RATE = {'nw': 1.0, 'bidirectional': 0.5}


def steps_to_transport(run_dir, threshold=TRANSPORTED):
  """The first evaluated step at which the lighter mode holds at least
  `threshold` of the mass; None if it never does (censored)."""
  for record in reporting.read_metrics(run_dir):
    if record.get(MASS_BALANCE, -1.0) >= threshold:
      return int(record['step'])
  return None


def _transport_schedule():
  """(evaluation interval, horizon) in steps of the transport-law sweep,
  read from its file."""
  overrides = sweep.load_sweep(os.path.join(
      SWEEPS, 'family_transport_law.py'))['overrides']
  return overrides['train.eval_every'], overrides['train.steps']


def _signal_limited(run, eval_every):
  """Whether a run enters the fit: it moved the mass, and took at least
  `FIT_EVALUATIONS` evaluations. Below that the time is the transit itself
  (50-150 steps at every sep/tau where the far mode's signal is strong,
  measured), not the signal's growth; a run that never moved the mass is
  censored."""
  return (run['steps'] is not None
          and run['steps'] >= FIT_EVALUATIONS * eval_every)


def fit_rate(ratios, steps, draws=2000, seed=0):
  """log(steps) = a + b sep/tau by least squares over the runs that
  moved the mass: (b, its 95 % t-interval, a bootstrap sample of b over
  the runs)."""
  from scipy import stats as scipy_stats
  x, y = np.asarray(ratios, float), np.log(np.asarray(steps, float))
  fit = scipy_stats.linregress(x, y)
  half = scipy_stats.t.ppf(0.975, len(x) - 2) * fit.stderr
  rng = np.random.default_rng(seed)
  boot = []
  for _ in range(draws):
    idx = rng.integers(0, len(x), len(x))
    if np.ptp(x[idx]) > 0:
      boot.append(scipy_stats.linregress(x[idx], y[idx]).slope)
  return fit.slope, (fit.slope - half, fit.slope + half), np.asarray(boot)


def transport_law(workdir, out):
  rows, _ = _run_sweep('transport_law', workdir)
  eval_every, horizon = _transport_schedule()
  runs = []
  for r in rows:
    field, ratio = r['setting'].rsplit('_x', 1)
    runs.append(dict(field=field, ratio=float(ratio), seed=r['seed'],
                     steps=steps_to_transport(r['run_dir'])))
  lines = ['| field | separation / tau | steps until the lighter mode '
           f'holds {TRANSPORTED:g} (per seed; > horizon: never) |',
           '|---|---|---|']
  fits, boots = {}, {}
  for field in dict.fromkeys(r['field'] for r in runs):
    mine = [r for r in runs if r['field'] == field]
    for ratio in sorted({r['ratio'] for r in mine}):
      cells = [r['steps'] for r in mine if r['ratio'] == ratio]
      lines.append(f'| {field} | {ratio:g} | ' + ', '.join(
          f'>{horizon}' if s is None else f'<={s}' if s <= eval_every
          else str(s) for s in cells) + ' |')
    moved = [r for r in mine if _signal_limited(r, eval_every)]
    if len({r['ratio'] for r in moved}) >= 2:
      b, ci, boots[field] = fit_rate([r['ratio'] for r in moved],
                                     [r['steps'] for r in moved])
      fits[field] = dict(rate=b, interval=ci, runs=len(moved),
                         censored=len(mine) - len(moved),
                         predicted=PREDICTED_RATE.get(field))
  lines += ['', '| field | fitted rate b (95 % interval) | predicted | '
            f'runs fitted (left out: under {FIT_EVALUATIONS * eval_every} '
            'steps or never) |',
            '|---|---|---|---|']
  for field, f in fits.items():
    lines.append(f"| {field} | {f['rate']:.2f} ({f['interval'][0]:.2f}, "
                 f"{f['interval'][1]:.2f}) | {f['predicted']} | "
                 f"{f['runs']} ({f['censored']}) |")
  if {'nw', 'bidirectional'} <= set(boots):
    n = min(len(boots['nw']), len(boots['bidirectional']))
    ratio = boots['nw'][:n] / boots['bidirectional'][:n]
    point = fits['nw']['rate'] / fits['bidirectional']['rate']
    lo, hi = np.percentile(ratio, [2.5, 97.5])
    fits['ratio_nw_over_bidirectional'] = dict(rate=point,
                                               interval=(lo, hi))
    lines.append(f'\nRate of `nw` over Alg. 2: {point:.2f} (bootstrap '
                 f'95 % interval {lo:.2f}, {hi:.2f}; predicted 2).')
  _write_json(out, 'transport_law', dict(runs=runs, fits=fits))
  table = '\n'.join(lines)
  _write_text(out, 'transport_law.md', table)
  _plot_transport_law(runs, fits, os.path.join(out, 'transport_law.png'),
                      eval_every, horizon)
  return table


def _plot_transport_law(runs, fits, path, eval_every, horizon):
  plt = reporting.pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for i, field in enumerate(dict.fromkeys(r['field'] for r in runs)):
    mine = [r for r in runs if r['field'] == field]
    fitted = [r for r in mine if _signal_limited(r, eval_every)]
    ax.scatter([r['ratio'] for r in fitted], [r['steps'] for r in fitted],
               s=10, color=f'C{i}', label=field)
    short = [r for r in mine if r['steps'] is not None
             and eval_every < r['steps'] and not _signal_limited(r, eval_every)]
    ax.scatter([r['ratio'] for r in short], [r['steps'] for r in short],
               s=10, facecolors='none', edgecolors=f'C{i}')
    for steps, marker, value in ((None, '^', horizon),
                                 (eval_every, 'v', eval_every)):
      xs = [r['ratio'] for r in mine if r['steps'] == steps]
      ax.scatter(xs, [value] * len(xs), marker=marker, s=14,
                 facecolors='none', edgecolors=f'C{i}')
    if field in fits and fitted:
      xs = np.array(sorted({r['ratio'] for r in fitted}))
      y0 = np.exp(np.mean([np.log(r['steps']) - fits[field]['rate']
                           * r['ratio'] for r in fitted]))
      ax.plot(xs, y0 * np.exp(fits[field]['rate'] * xs), color=f'C{i}',
              lw=1, label=f"{field}: b = {fits[field]['rate']:.2f}")
  ax.set(yscale='log', xlabel='separation / tau',
         ylabel=f'steps until the lighter mode holds {TRANSPORTED:g}')
  ax.legend(fontsize=7, loc='center', title='open: not fitted\n(triangles: '
            f'never within {horizon:,} steps, up;\nby the first evaluation, '
            'down)',
            title_fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def window_sensitivity(mmd_by_tau, draws=4000, seed=0):
  """A field's sensitivity to tau around its own optimum: tau* the
  temperature of least mean MMD^2, and the larger of its two neighbours'
  mean MMD^2 over tau*'s (half a decade either side on this grid); with a
  95 % bootstrap interval (seeds resampled at every temperature, tau*
  kept). `mmd_by_tau`: {tau: [MMD^2 per seed]}. Returns a dict, or one
  with `edge` set when tau* has no neighbour on one side."""
  taus = sorted(mmd_by_tau)
  means = [statistics.fmean(mmd_by_tau[t]) for t in taus]
  best = int(np.argmin(means))
  result = dict(best_temperature=taus[best], edge=best in (0, len(taus) - 1))
  if result['edge']:
    return result
  window = [taus[best - 1], taus[best], taus[best + 1]]
  rng = np.random.default_rng(seed)

  def spread(sample):
    m = {t: np.mean(sample(t)) for t in window}
    return max(m[window[0]], m[window[2]]) / m[window[1]]

  boot = [spread(lambda t: rng.choice(mmd_by_tau[t], len(mmd_by_tau[t])))
          for _ in range(draws)]
  result.update(window=window, spread=spread(lambda t: mmd_by_tau[t]),
                interval=tuple(np.percentile(boot, [2.5, 97.5])),
                samples=np.asarray(boot))
  return result


def temperature(workdir, out):
  rows, sweep_dir = _run_sweep('temperature', workdir)
  groups = _group(rows, ('data.name', 'field.normalization',
                         'field.temperatures'),
                  lambda r: (float(r['eval/energy_distance_ratio']),
                             float(r['eval/mmd2'])))
  results, lines = [], [
      '| data | field | tau | ED / floor (per seed) | MMD² (mean +- std) |',
      '|---|---|---|---|---|']
  for (dataset, normalization, tau), values in groups.items():
    mmd_mean, mmd_std = _mean_std([m for _, m in values])
    results.append(dict(dataset=dataset, normalization=normalization,
                        temperature=float(tau),
                        ed_ratio=[e for e, _ in values],
                        mmd2=[m for _, m in values]))
    lines.append(f'| {dataset} | {normalization} | {tau} | '
                 + ', '.join(f'{e:.3g}' for e, _ in values)
                 + f' | {mmd_mean:.2g} +- {mmd_std:.1g} |')
  windows = _window_table(results, lines)
  _write_json(out, 'temperature', dict(runs=results, windows=windows))
  table = '\n'.join(lines)
  _write_text(out, 'temperature.md', table)
  for dataset in dict.fromkeys(r['dataset'] for r in results):
    _plot_by_temperature(
        [r for r in results if r['dataset'] == dataset], 'ed_ratio',
        os.path.join(out, f'temperature_{dataset}.png'),
        x=lambda r: r['temperature'], xlabel='tau (data units)',
        ylabel=f'{dataset}: energy distance / floor', log_y=True)
  _copy(sweep_dir, out, 'temperature', ('samples.png',))
  return table


def _window_table(results, lines):
  """Appends each field's window sensitivity (`window_sensitivity`) and
  Sinkhorn's against the bidirectional field's to `lines`; returns them."""
  lines += ['', '| data | field | best tau | MMD² spread in the window '
            '(95 % bootstrap) |', '|---|---|---|---|']
  windows = {}
  for dataset in dict.fromkeys(r['dataset'] for r in results):
    for normalization in dict.fromkeys(r['normalization'] for r in results):
      mine = {r['temperature']: r['mmd2'] for r in results
              if r['dataset'] == dataset
              and r['normalization'] == normalization}
      w = window_sensitivity(mine)
      windows[f'{dataset}/{normalization}'] = w
      cell = ('at the grid edge' if w['edge'] else
              f"{w['spread']:.2f}x ({w['interval'][0]:.2f}, "
              f"{w['interval'][1]:.2f})")
      lines.append(f"| {dataset} | {normalization} | "
                   f"{w['best_temperature']:g} | {cell} |")
    a = windows.get(f'{dataset}/sinkhorn', {})
    b = windows.get(f'{dataset}/bidirectional', {})
    if 'samples' in a and 'samples' in b:
      ratio = a['samples'] / b['samples']
      lo, hi = np.percentile(ratio, [2.5, 97.5])
      lines.append(f"| {dataset} | Sinkhorn / bidirectional | | "
                   f"{a['spread'] / b['spread']:.2f} ({lo:.2f}, {hi:.2f}) |")
      windows[f'{dataset}/sinkhorn_over_bidirectional'] = dict(
          ratio=a['spread'] / b['spread'], interval=(lo, hi))
  for w in windows.values():
    w.pop('samples', None)
  return windows


def annealing(workdir, out):
  rows, sweep_dir = _run_sweep('annealing', workdir)
  groups = _group(rows, ('kernel',), lambda r: r['run_dir'])
  results, lines = [], [
      '| kernel | ED / floor at steps 200, 1,000, 2,000 (mean over seeds) '
      '| ED / floor at 2,000 (per seed) |', '|---|---|---|']
  for (name,), run_dirs in groups.items():
    curves = [[(r['step'], r['eval/energy_distance_ratio'])
               for r in reporting.read_metrics(d)
               if 'eval/energy_distance_ratio' in r] for d in run_dirs]
    by_step = {s: statistics.fmean(dict(c)[s] for c in curves)
               for s, _ in curves[0]}
    results.append(dict(kernel=name, curves=curves))
    lines.append(f'| {name} | '
                 + ', '.join(f'{by_step.get(s, float("nan")):.3g}'
                             for s in (200, 1000, 2000))
                 + ' | ' + ', '.join(f'{c[-1][1]:.3g}' for c in curves)
                 + ' |')
  _write_json(out, 'annealing', results)
  table = '\n'.join(lines)
  _write_text(out, 'annealing.md', table)
  _copy(sweep_dir, out, 'annealing', ('metric_vs_step.png', 'samples.png'))
  return table


def _plot_by_temperature(results, key, path, *, x, xlabel, ylabel, log_y):
  """One line per field: the mean over seeds of `key` against x(result),
  each seed as a dot."""
  plt = reporting.pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for normalization in dict.fromkeys(r['normalization'] for r in results):
    mine = sorted((r for r in results if r['normalization'] == normalization),
                  key=x)
    xs = [x(r) for r in mine]
    line, = ax.plot(xs, [statistics.fmean(r[key]) for r in mine],
                    marker='o', ms=3, label=normalization)
    for xv, r in zip(xs, mine, strict=True):
      ax.scatter([xv] * len(r[key]), r[key], s=6, color=line.get_color(),
                 alpha=0.5)
  ax.set(xscale='log', xlabel=xlabel, ylabel=ylabel)
  ticks = sorted({x(r) for r in results})
  ax.set_xticks(ticks, [f'{t:g}' for t in ticks])
  ax.xaxis.set_minor_locator(plt.NullLocator())
  if log_y:
    ax.set_yscale('log')
  ax.legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _write_json(out, name, results):
  with open(os.path.join(out, f'{name}.json'), 'w') as f:
    json.dump(results, f, indent=1)


def _write_text(out, name, text):
  with open(os.path.join(out, name), 'w') as f:
    f.write(text + '\n')


SECTIONS = {'asymmetry': asymmetry, 'mass_transport': mass_transport,
            'transport_law': transport_law, 'temperature': temperature,
            'annealing': annealing}


def run(sections, workdir, out):
  cli.check_subset('sections', sections, SECTIONS)
  os.makedirs(out, exist_ok=True)
  for name in sections:
    print(f'== {name}\n{SECTIONS[name](workdir, out)}', flush=True)


def main(argv):
  cli.check_no_arguments(argv)
  run(FLAGS.sections, FLAGS.workdir, FLAGS.out)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
