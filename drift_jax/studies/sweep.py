r"""A sweep: a grid of configs through the runner, tabulated and plotted
(`python -m experiments.ablate --sweep FILE --workdir DIR`).

A sweep file defines `get_sweep()` returning a dict:
  base: 'configs/toy2d.py:recipe'      the config every point starts from;
  overrides: {'train.steps': 1000}     dotted keys set on every point;
  grid: {'field.temperatures': [(0.02,), (0.05,)], 'method': [...]}
        the axes; points are their Cartesian product. A value may also be a
        dict of several overrides, with an optional 'name' (one setting
        that touches several keys, e.g. a method and its teacher);
  seeds: 3                              config.seed = 0..seeds-1 per point;
  plot_metrics: ('eval/mode_mass/0',)   optional extra metrics to plot
        against step and wall-clock (besides the energy-distance ratio);
  eval_protocol: 'per_seed'             optional: each seed draws its own
        evaluation sets (`config_lib.PER_SEED_EVAL`), the protocol the
        sweeps published before the leaderboard were measured with;
        default 'fixed' (the config's `eval.seed` and `eval.floor_draws`).

Each (point, seed) trains in WORKDIR/POINT/seed_S. A finished run leaves
`result.json` there and is skipped next time, and an interrupted one
resumes from its checkpoints, so re-running the command resumes a sweep.
Outputs in WORKDIR: results.csv (one row per run), results.md (mean +- std
over seeds), samples.png, metric_vs_step.png, metric_vs_wall.png (teacher
time included) and, for 2-D drifting points, fields.png.
"""

import csv
import itertools
import math
import os
import re
import statistics

from drift_jax import evaluators
from drift_jax.config import config_lib
from drift_jax.studies import store
from drift_jax.studies import suite as suite_lib
from drift_jax.studies import sweep_plots
from drift_jax.studies.sweep_plots import PLOT_METRIC
from drift_jax.train import reporting
from drift_jax.train import runner
from drift_jax.train import workdir as workdir_lib

RESULT_FILE = 'result.json'
RESULT_SCHEMA = {'step': int}  # a run's summary (`runner`)
BUDGET_COLUMNS = ('time/total_wall_seconds', 'steps_to_2x_floor',
                  'seconds_to_2x_floor')


def table_metrics() -> tuple[str, ...]:
  """Columns of results.md: the registered evaluators' tabled metrics,
  then the budget."""
  return (*evaluators.tabled_metrics(), *BUDGET_COLUMNS)

TARGET_RATIO = 2.0  # time-to-quality: first evaluation at <= 2x the floor


def load_sweep(path):
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Sweep file {path!r} does not exist.')
  sweep = config_lib.load_module(path, '_sweep').get_sweep()
  unknown = set(sweep) - {'base', 'overrides', 'grid', 'seeds',
                          'plot_metrics', 'eval_protocol'}
  if unknown or 'base' not in sweep:
    raise ValueError(f'Sweep {path!r}: needs `base`, may have overrides, '
                     f'grid, seeds, plot_metrics, eval_protocol; unknown '
                     f'keys {sorted(unknown)}.')
  config_lib.check_choice('eval_protocol', sweep.get('eval_protocol',
                                                     'fixed'),
                          ('fixed', 'per_seed'))
  return sweep


def _label(value):
  if isinstance(value, dict):
    return value.get('name') or ','.join(f'{k}={_label(v)}'
                                         for k, v in value.items())
  if isinstance(value, (tuple, list)):
    return '+'.join(str(v) for v in value)
  return str(value)


def points(sweep):
  """[(name, {axis: label}, {dotted key: value})] over the grid product."""
  grid = sweep.get('grid', {})
  axes = list(grid)
  result = []
  for values in itertools.product(*(grid[a] for a in axes)):
    overrides, labels = dict(sweep.get('overrides', {})), {}
    for axis, value in zip(axes, values, strict=True):
      labels[axis] = _label(value)
      if isinstance(value, dict):
        overrides.update({k: v for k, v in value.items() if k != 'name'})
      else:
        overrides[axis] = value
    name = '__'.join(f'{a.split(".")[-1]}={labels[a]}' for a in axes)
    result.append((re.sub(r'[^\w.=+,-]', '_', name) or 'base', labels,
                   overrides))
  return result


def make_config(sweep, overrides, seed):
  """The base config with the point's overrides (`suite.config_with_
  overrides`), at `seed`, without a progress bar."""
  if sweep.get('eval_protocol') == 'per_seed':
    overrides = {**config_lib.PER_SEED_EVAL, **overrides}
  config = suite_lib.config_with_overrides(sweep['base'], overrides)
  config.seed = seed
  config.train.progress = False
  return config


def run_sweep(sweep, workdir, seeds, dry_run=False, only=None):
  rows = []
  for name, labels, overrides in points(sweep):
    if only and not re.search(only, name):
      continue
    for seed in range(seeds):
      run_dir = os.path.join(workdir, name, f'seed_{seed}')
      config = make_config(sweep, overrides, seed)  # fails early on bad keys
      result_path = os.path.join(run_dir, RESULT_FILE)
      # A damaged result.json is moved aside (one line) and derived again
      # from the run's workdir (a finished run trains no step).
      summary = store.read_checked(result_path, RESULT_SCHEMA, 'result')
      if summary is None and dry_run:
        print(f'would run {run_dir}')
        continue
      if summary is None:
        print(f'running {run_dir}', flush=True)
        summary = runner.train_and_evaluate(config, run_dir)
        workdir_lib.write_json(result_path, summary)  # atomic
      # `config.method` first: a grid axis named 'method' keeps its label.
      rows.append({'config.method': config.method, 'point': name, **labels,
                   'seed': seed, 'run_dir': run_dir, **summary,
                   **time_to_quality(run_dir)})
  return rows


def time_to_quality(run_dir, target=TARGET_RATIO):
  """Generator steps and wall-clock seconds (a trained teacher's included)
  at the first evaluation with energy distance <= target x the floor; NaN
  when no evaluation got there."""
  for record in reporting.read_metrics(run_dir):
    if record.get(PLOT_METRIC, float('inf')) <= target:
      return {'steps_to_2x_floor': record['step'],
              'seconds_to_2x_floor': record['time/total_wall_seconds']}
  return {'steps_to_2x_floor': float('nan'),
          'seconds_to_2x_floor': float('nan')}


def write_tables(rows, workdir, axes):
  keys = list(dict.fromkeys(k for r in rows for k in r))
  with open(os.path.join(workdir, 'results.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
  metrics = [m for m in table_metrics() if any(m in r for r in rows)]
  lines = ['| ' + ' | '.join([*axes, 'seeds', *metrics]) + ' |',
           '|' + '---|' * (len(axes) + 1 + len(metrics))]
  for name in dict.fromkeys(r['point'] for r in rows):
    group = [r for r in rows if r['point'] == name]
    cells = [str(group[0][a]) for a in axes] + [str(len(group))]
    for m in metrics:
      values = [float(r[m]) for r in group
                if m in r and math.isfinite(float(r[m]))]
      std = statistics.stdev(values) if len(values) > 1 else 0.0
      cells.append(f'{statistics.fmean(values):.3g} +- {std:.2g}'
                   + (f' ({len(values)}/{len(group)})'
                      if len(values) < len(group) else '')
                   if values else '-')
    lines.append('| ' + ' | '.join(cells) + ' |')
  table = '\n'.join(lines)
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write(table + '\n')
  return table


def run(sweep_path, workdir, seeds=0, dry_run=False, only=None):
  """Runs (or resumes) a sweep file's grid, then writes tables and plots;
  returns the rows of results.csv (one dict per run; [] on a dry run)."""
  sweep = load_sweep(sweep_path)
  seeds = seeds or sweep.get('seeds', 1)
  os.makedirs(workdir, exist_ok=True)
  rows = run_sweep(sweep, workdir, seeds, dry_run, only)
  if dry_run or not rows:
    return []
  table = write_tables(rows, workdir, list(sweep.get('grid', {})))
  print(table)
  sweep_plots.plot_samples(rows, workdir)
  for metric in (PLOT_METRIC, *sweep.get('plot_metrics', ())):
    sweep_plots.plot_curves(rows, workdir, metric)
  sweep_plots.plot_fields(rows, workdir)
  print(f'\nresults: {os.path.join(workdir, "results.csv")}, '
        'results.md, samples.png, metric_vs_step.png, metric_vs_wall.png'
        + (', fields.png' if sweep_plots.has_fields(rows) else ''))
  return rows
