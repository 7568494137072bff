"""The leaderboard of a comparison suite, from its stored results alone
(`python -m experiments.compare --report_only`).

Per task: a table with one row per method (the point chosen on validation,
steps, charged seconds with a teacher's, each metric's mean and 95 %
t-interval over the final seeds, failures counted) under a data row (where
a perfect sampler lands, scored the same way), a figure of quality against
charged seconds (mean and interval band), and the tuning table. Then the
headline and a summary generated from the stored verdicts
(`studies/verdicts.py`; the README quotes the headline): per task the best
method on the headline metric, which methods are worse and which are not
shown to differ, with the ratio the data still allow and the one the
design detects at 80 % power. Oracle-teacher rows are upper
bounds (`upper_bound` in the suite) and multi-step rows references
(`reference`): shown, never ranked.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from drift_jax import evaluators
from drift_jax import stats
from drift_jax.studies import budget_report
from drift_jax.studies import changes
from drift_jax.studies import edges
from drift_jax.studies import harness
from drift_jax.studies import provenance
from drift_jax.studies import store
from drift_jax.studies import suite as suite_lib
from drift_jax.studies import verdicts
from drift_jax.train import reporting


def load(suite) -> dict:
  """{(task, method): {'tune', 'final', 'default': [results]}} of the
  stored result files (a budget-axis task under its own name,
  'TASK@Bs'), plus the data rows under (task, None)."""
  out = {}
  for task in suite['tasks']:
    row = store.read_checked(store.data_row_path(suite, task),
                             store.DATA_ROW_SCHEMA, 'data row')
    changed = row and provenance.data_row_differences(suite, task, row)
    if changed and not suite.get('reuse_stale'):
      print(f'left out of the leaderboard: the data row of {task["name"]} '
            f'({", ".join(changed)} changed); rerun the suite to score it '
            'again.', file=sys.stderr, flush=True)
    elif row is not None:
      out[(task['name'], None)] = row
    for t in [task, *suite_lib.budget_tasks(task)]:
      for method in suite['methods']:
        cell = current(suite, t, method, store.stored_cell(suite, t, method))
        if any(cell.values()):
          out[(t['name'], method['name'])] = cell
  return out


def current(suite, task, method, cell: dict) -> dict:
  """The cell's results the suite still asks for (`studies.provenance`):
  a stale one (its grid point, budget, calibration, evaluation or metric
  changed since) is named in one line and left out, so no number shows
  under a label that did not produce it (unless `suite['reuse_stale']`)."""
  calibration = store.stored_calibrations(suite).get(
      f'{suite_lib.base_name(task)}/{method["name"]}')
  if calibration is None or suite.get('reuse_stale'):
    return cell
  base = next(t for t in suite['tasks']
              if t['name'] == suite_lib.base_name(task))
  tuned = cell['tune'] if base is task else store.stored_cell(
      suite, base, method)['tune']  # a budget-axis task tunes on its base
  points = {'default': suite_lib.search_points(method)}
  points['tune'] = points['final'] = harness.tuned_points(
      suite, base, method, tuned)
  out = {}
  for phase, results in cell.items():
    out[phase] = []
    for r in results:
      changed = (['point'] if r['point'] >= len(points[phase]) else
                 harness.stale_changes(suite, suite_lib.Run(
                     task, method, phase, r['point'], r['seed'],
                     points[phase][r['point']]), r, calibration))
      if changed:
        print(f'left out of the leaderboard: {task["name"]}/'
              f'{method["name"]} {phase} point {r["point"]} seed '
              f'{r["seed"]} ({", ".join(changed)} changed); rerun the suite '
              'to train it again.', file=sys.stderr, flush=True)
      else:
        out[phase].append(r)
  return out


values = verdicts.values


def interval(results, metric) -> stats.Interval:
  return stats.mean_interval(values(results, metric))


def _charged_part(result, name, steps) -> str:
  """' (S s)': the charged seconds of a prerequisite's steps, where the
  result records its seconds per step."""
  per_step = result.get('prerequisites', {}).get(name, {}).get(
      'seconds_per_step')
  return f' ({steps * per_step:.3g} s)' if per_step else ''


def metric_cell(results, metric) -> str:
  """The metric's interval over `results`; '—' where no finished run
  recorded it (a metric stored results did not keep, or one the data row
  has no meaning for), which is not a failure."""
  finished = [r for r in results if r['status'] == 'ok']
  if finished and not any(metric in r['final'] for r in finished):
    return '—'
  return str(interval(results, metric))


def _suffix(method) -> str:
  return (' (upper bound)' if method.get('upper_bound') else
          ' (reference)' if method.get('reference') else '')


def _fmt_point(point: dict) -> str:
  return ', '.join(f'{k.split(".")[-1]}={_short(v)}' for k, v in
                   point.items()) or 'defaults'


def _short(v):
  if isinstance(v, (list, tuple)):
    return '(' + ','.join(_short(x) for x in v) + ')'
  if isinstance(v, float):
    return f'{v:g}'
  return str(v)


def task_section(suite, task, table, figures_rel) -> list[str]:
  metrics = [task['metric'], *[m for m in task.get('metrics', ())
                               if m != task['metric']]]
  lines = [f'## {task["name"]}', '',
           f'Budget {task["budget_seconds"]} s per run (a teacher '
           f'included); chosen on validation by '
           f'{evaluators.label(task["metric"])}; '
           f'{_seed_counts(suite, task, table)}; mean [95 % interval].',
           '']
  header = ['method', 'chosen point', 'steps', 'charged s',
            *[evaluators.label(m) for m in metrics], 'failed']
  lines += ['| ' + ' | '.join(header) + ' |',
            '|' + '---|' * len(header)]
  row = table.get((task['name'], None))
  if row is not None:
    draws = [{'status': 'ok', 'final': d} for d in row['draws']]
    cells = [f'data ({len(draws)} draws)', '—', '—', '—',
             *[metric_cell(draws, m) for m in metrics], '0']
    lines.append('| ' + ' | '.join(cells) + ' |')
  for method in suite['methods']:
    cell = table.get((task['name'], method['name']))
    if not cell or not cell['final']:
      continue
    final = cell['final']
    first = final[0]
    steps = str(first['steps']) + ''.join(
        f' + {n} {name}' + _charged_part(first, name, n)
        for name, n in store.prerequisite_steps(first).items()) + ''.join(
            f' + {name} ({seconds:.3g} s)'
            for name, seconds in first.get('setups', {}).items())
    name = method.get('label', method['name']) + _suffix(method)
    failed = sum(r['status'] != 'ok' for r in final)
    cells = [name, _chosen_point(suite, task, method, first), steps,
             f"{first['charged_seconds']:.3g}",
             *[metric_cell(final, m) for m in metrics],
             f'{failed}/{len(final)}']
    lines.append('| ' + ' | '.join(cells) + ' |')
  figure = plot_curves(suite, task, table, figures_rel)
  if figure:
    lines += ['', f'![{task["name"]}: {evaluators.label(task["metric"])}'
              ' against charged seconds; geometric mean over the test seeds '
              'with the 95 % t-band of the log values (grey: the data row)]'
              f'({figure})']
  lines += sample_grids(suite, task)
  lines += tuning_table(suite, task, table)
  return lines


def _chosen_point(suite, task, method, first) -> str:
  """The chosen point, marked where it sits at the edge of one of the
  method's ordered axes (`edges.at_edge`: the grid may not bracket the
  optimum)."""
  text = _fmt_point(first['overrides'])
  tuned = store.stored_cell(suite, task, method)['tune']
  if not tuned:
    return text
  points = harness.tuned_points(suite, task, method, tuned)
  if len(tuned) < len(points):
    return text
  axes = edges.at_edge(suite, method, points, first['point'])
  return text + (f' (edge: {", ".join(a.split(".")[-1] for a in axes)})'
                 if axes else '')


def _seed_counts(suite, task, table) -> str:
  """'3 test seeds per method', or with finalists which have more."""
  text = f'{len(suite["final_seeds"])} test seeds per method'
  names = harness.finalists(suite, task) if suite.get('finalists') else None
  if names:
    ordered = [m['name'] for m in suite['methods'] if m['name'] in names]
    text += (f', {len(suite["finalists"]["seeds"])} for the finalists ('
             f'{", ".join(ordered)})')
  return text


def tuning_table(suite, task, table) -> list[str]:
  """The validation score of every search point, the chosen one bold;
  a method with fewer points (its grid not extended) has empty cells, so
  every row has the header's width."""
  seeds = suite_lib.tuning_seeds(suite)
  rows = []
  for method in suite['methods']:
    cell = table.get((task['name'], method['name']))
    if not cell or not cell['tune']:
      continue
    chosen = cell['final'][0]['point'] if cell['final'] else None
    scores = harness.point_scores(cell['tune'], task['metric'])
    overrides = {r['point']: r['overrides'] for r in cell['tune']}
    cells = []
    for point in sorted(scores):
      value = scores[point]
      text = f'{value:.3g}' if math.isfinite(value) else 'failed'
      text += f' ({_fmt_point(overrides[point])})'
      cells.append(f'**{text}**' if point == chosen else text)
    rows.append([method['name'], *cells])
  width = max([suite['search_points']] + [len(r) - 1 for r in rows])
  rows = ['| ' + ' | '.join(r + [''] * (width + 1 - len(r))) + ' |'
          for r in rows]
  seed_text = (f'seed {seeds[0]}' if len(seeds) == 1 else
               f'mean over seeds {", ".join(map(str, seeds))}')
  return ['', f'<details><summary>Tuning (validation, {seed_text})'
          '</summary>', '',
          '| method | ' + ' | '.join(f'p{i}' for i in range(width)) + ' |',
          '|---|' + '---|' * width, *rows, '', '</details>', '']


def sample_grids(suite, task) -> list[str]:
  """An image task's sample grids, one per method at its chosen point
  (its first test seed; `harness.save_sample_grid`), where stored."""
  report_dir = os.path.dirname(report_path(suite)) or '.'
  lines = []
  for method in suite['methods']:
    path = store.samples_path(suite, task, method)
    if os.path.isfile(path):
      label = method.get('label', method['name']) + _suffix(method)
      lines.append(f'![{task["name"]}: {label} at its chosen point, test '
                   f'seed {suite["final_seeds"][0]}]'
                   f'({os.path.relpath(path, report_dir)})')
  if not lines:
    return []
  return ['', f'Samples of each method at its chosen point (test seed '
          f'{suite["final_seeds"][0]}; one row per class when '
          'conditional):', '', *lines]


def plot_curves(suite, task, table, figures_rel):
  """Headline metric against charged seconds: per method the mean over
  test seeds at each evaluation and its 95 % t-interval band."""
  metric = task['metric']
  plt = reporting.pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4))
  drawn = False
  for method in suite['methods']:
    cell = table.get((task['name'], method['name']))
    if not cell or not cell['final']:
      continue
    curves = [r['curve'] for r in cell['final'] if r['curve']]
    if not curves:
      continue
    length = min(len(c) for c in curves)
    x = np.array([p['charged_seconds'] for p in curves[0][:length]])
    ys = [[c[i].get(metric, math.nan) for c in curves]
          for i in range(length)]
    log_scale = not evaluators.higher_is_better(metric)
    # Ratios are positive and skewed: on the log axis, the geometric mean
    # and the t-interval of the log values (an arithmetic band would reach
    # below zero with three seeds).
    ivs = [stats.mean_interval(np.log(y) if log_scale else y) for y in ys]
    if log_scale:
      ivs = [stats.Interval(math.exp(iv.mean), math.exp(iv.low),
                            math.exp(iv.high), iv.n, iv.failed)
             if iv.n else iv for iv in ivs]
    mean = np.array([iv.mean for iv in ivs])
    label = method.get('label', method['name']) + _suffix(method)
    line, = ax.plot(x, mean, marker='o', ms=3, label=label,
                    ls='--' if verdicts.not_competing(method) else '-')
    ax.fill_between(x, [iv.low for iv in ivs], [iv.high for iv in ivs],
                    color=line.get_color(), alpha=0.15)
    drawn = True
  row = table.get((task['name'], None))
  if row is not None and drawn:
    iv = stats.mean_interval([d.get(metric, math.nan) for d in row['draws']])
    # The data row's range, as above.
    if not evaluators.higher_is_better(metric):
      iv = stats.mean_interval(np.log([d.get(metric, math.nan)
                                       for d in row['draws']]))
      iv = stats.Interval(math.exp(iv.mean), math.exp(iv.low),
                          math.exp(iv.high), iv.n, iv.failed)
    ax.axhspan(iv.low, iv.high, color='k', alpha=0.12, label='data (95 %)')
  if not drawn:
    plt.close(fig)
    return None
  ax.set_xlabel('charged seconds (calibrated steps; teacher included)')
  ax.set_ylabel(evaluators.label(metric))
  if not evaluators.higher_is_better(metric):
    ax.set_yscale('log')
  ax.set_title(task['name'])
  ax.legend(fontsize=6)
  fig.tight_layout()
  folder = figures_dir(suite)
  os.makedirs(folder, exist_ok=True)
  name = f'{task["name"]}.png'
  fig.savefig(os.path.join(folder, name), dpi=110)
  plt.close(fig)
  return os.path.join(figures_rel, name)


def report_path(suite):
  return suite.get('report', os.path.join('docs', f'leaderboard_'
                                          f'{suite["name"]}.md'))


def figures_dir(suite):
  return suite.get('figures', os.path.join(
      os.path.dirname(report_path(suite)) or '.', 'figures', 'leaderboard',
      suite['name']))


def default_section(suite, table) -> list[str]:
  """The suite's `default_method` at its one cross-task point: the score
  of every point, then per task the test result of that point (its final
  runs where the task chose it too, its `default` runs elsewhere)."""
  name = suite.get('default_method')
  if not name:
    return []
  method = verdicts.method_of(suite, name)
  scores = harness.cross_task_scores(suite, method)
  lines = [f'## The default {name} config: one config across the suite',
           '',
           f'What "default" means in the README and the configs; the rows '
           f'"{verdicts.label_of(suite, name)}" in the task tables are '
           'the same field with each task\'s own choice from the grid.', '']
  if scores is None:
    return lines + ['Pending: not every task is tuned yet.', '']
  point = harness.cross_task_point(suite, method)
  lines += ['Each search point scored by the geometric mean over tasks of '
            'its validation headline metric (the tuning runs; a ranking '
            'independent of each task\'s units):', '',
            '| point | tasks | geometric mean |', '|---|---|---|']
  for r in sorted(scores, key=lambda r: (r['geomean'], r['point'])):
    cells = [_fmt_point(r['overrides']), str(r['tasks']),
             f'{r["geomean"]:.3g}']
    if r['point'] == point:  # bold inside each cell: a row must start '|'
      cells = [f'**{c}**' for c in cells]
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines += ['', f'The chosen config, {_fmt_point(method_point(method, point))}'
            ', on each task\'s test set (seeds '
            f'{", ".join(map(str, suite["final_seeds"]))}):', '',
            '| task | metric | this config | tuned per task | data |',
            '|---|---|---|---|---|']
  for task in suite['tasks']:
    cell = table.get((task['name'], name))
    if not cell or not suite_lib.applies(task, method):
      continue
    final = cell['final']
    runs, same = default_runs(suite, task, table, point)
    row = table.get((task['name'], None))
    data = (str(stats.mean_interval([d.get(task['metric'], math.nan)
                                     for d in row['draws']]))
            if row else '—')
    lines.append(f'| {task["name"]} | '
                 f'{evaluators.label(task["metric"])} | '
                 + (str(interval(runs, task['metric'])) if runs
                    else 'pending')
                 + (' (same point)' if same else '') + ' | '
                 + (str(interval(final, task['metric'])) if final
                    else 'pending') + f' | {data} |')
  return lines + ['']


def default_runs(suite, task, table, point) -> tuple[list, bool]:
  """(test runs of the suite's default config, its cross-task `point`
  (`harness.cross_task_point`), on `task`, whether they are the task's
  final runs): its final runs where the task chose that point too, its
  `default` runs elsewhere ([] while pending)."""
  cell = table.get((task['name'], suite['default_method']), {})
  final = cell.get('final', [])
  same = bool(final) and point is not None and final[0]['point'] == point
  return (final if same else cell.get('default', [])), same


def method_point(method, point):
  return suite_lib.search_points(method)[point]


def _runs_wall_hours(table) -> float:
  return sum(r.get('wall_seconds', 0.0) for key, cell in table.items()
             if key[1] is not None
             for r in cell['tune'] + cell['final'] + cell['default']
             ) / 3600


def finalists_paragraph(suite) -> list[str]:
  """The finalists' and the grids' protocol, a paragraph each."""
  limit = suite.get('extend_edges', 0)
  lines = [
      'A chosen point marked "(edge: axis)" sits at an end of that ordered '
      'axis of its method\'s grid, which therefore does not bracket the '
      'optimum there' + (
          f'; an edge choice extends its axis by one point, up to {limit} '
          'times per direction (`studies/edges.py`).' if limit else
          ' (this suite does not extend its grids: `extend_edges`).'), '']
  spec = suite.get('finalists')
  if not spec:
    return lines
  return lines + [
      f'Finalists: on each task, {", ".join(spec.get("always", ()))} and '
      f'the {spec.get("best_rivals", 0)} best other one-step methods on '
      f'validation are trained with {len(spec["seeds"])} test seeds '
      f'({", ".join(map(str, spec["seeds"]))}), fixed before any was run '
      'and never extended on seeing results; every other method keeps '
      f'{len(suite["final_seeds"])}. Comparisons with unequal seeds use '
      'every seed of each (Welch), or the common ones (paired).', '']


def summary_section(suite, table) -> list[str]:
  """The generated headline (`verdicts.headline`, which the README quotes)
  and the summary table (`verdicts.summary_rows`)."""
  rows = verdicts.summary_rows(suite, table)
  lines = finalists_paragraph(suite)
  headline_lines = verdicts.headline(suite, table)
  if headline_lines:
    lines += ['## Headline', '', *headline_lines, '']
  test = rows[0]['test'] if rows else 'paired'
  lines += ['## Summary', '',
            'Among the one-step generators (oracle-teacher DMD, an upper '
            'bound, and the multi-step diffusion reference are in the task '
            'tables, not ranked); "so far" while methods are pending. The '
            'best has the lowest geometric mean (fewest failures first). '
            + verdicts.VERDICT_PROTOCOL.format(
                test=verdicts.TEST_NAMES[test]) + ' Each row\'s claims are '
            'one family for Holm\'s correction. A cell not shown to differ '
            'gives the ratio to the best its 95 % interval still allows '
            '(either way) and the ratio this design detects at 80 % power.',
            '',
            '| task | metric | best | worse than the best | not shown to '
            'differ from the best: ≤ allowed ratio (detectable ratio) | '
            'pending |',
            '|---|---|---|---|---|---|']
  for r in rows:
    best = r['best'] + (' (so far)' if r['pending'] else '')
    worse = [n for n, _, verdict in r['claims'] if verdict == stats.WORSE]
    tied = ', '.join(f'{n} ≤ {c.allows:.3g}× ({c.detectable:.3g}×)'
                     for n, c, verdict in r['claims']
                     if verdict != stats.WORSE)
    lines.append(f'| {r["task"]} | {evaluators.label(r["metric"])} '
                 f'| {best} | {", ".join(worse) or "—"} | '
                 f'{tied or "—"} | '
                 f'{", ".join(r["pending"]) or "—"} |')
  lines.append('')
  return lines


def changes_section(suite, table) -> list[str]:
  """What moved from the suite this one replaces (`previous`), from both
  suites' stored results (`studies/changes.py`)."""
  if not suite.get('previous'):
    return []
  previous = suite_lib.load_suite(suite['previous'])
  return changes.section(suite, table, previous, load(previous))


def write(suite) -> str:
  """Writes the leaderboard (and its figures) and returns its path."""
  table = load(suite)
  path = report_path(suite)
  figures_rel = os.path.relpath(figures_dir(suite),
                                os.path.dirname(path) or '.')
  calibration = store.calibration_file(suite)
  wall = store.wall_time(suite)
  lines = [f'# {suite.get("title", "Leaderboard: " + suite["name"])}', '',
           '<!-- generated by `python -m experiments.compare --suite '
           f'suites/{suite["name"]}.py --report_only`; do not edit -->', '']
  lines += [suite.get('notes', '').strip(), ''] if suite.get('notes') else []
  machine = calibration.get('machine', {})
  lines += [f'Protocol: {suite["search_points"]} search points per method, '
            f'each trained with seed'
            f'{"s" if len(suite_lib.tuning_seeds(suite)) > 1 else ""} '
            f'{", ".join(map(str, suite_lib.tuning_seeds(suite)))} and '
            'scored on a validation set; the best trained again with seeds '
            f'{", ".join(map(str, suite["final_seeds"]))} and scored on the '
            'test set. Every run of a task is scored against the same '
            'held-out set; floors average '
            f'{suite.get("floor_draws", 10)} data-vs-data draws; the data '
            f'row scores {suite.get("data_draws", 10)} draws of the data '
            'the same way. Budgets are seconds of the calibration machine '
            f'({machine.get("processor", "?")}, {machine.get("cpu_count")} '
            f'cores, jax {machine.get("jax")}, {machine.get("date")}), '
            'converted once into steps; a trained teacher is paid from '
            'DMD\'s budget. Wall time: '
            f'{_runs_wall_hours(table) + wall.get("seconds", 0) / 3600:.2f}'
            ' h in all, of which the stored runs (training, compilation, '
            f'evaluation) {_runs_wall_hours(table):.2f} h and calibration, '
            'classifier and data rows '
            f'{wall.get("seconds", 0) / 3600:.2f} h.', '']
  lines += summary_section(suite, table)
  for task in suite['tasks']:
    if any((task['name'], m['name']) in table for m in suite['methods']):
      lines += task_section(suite, task, table, figures_rel)
  lines += default_section(suite, table)
  lines += budget_report.budget_section(suite, table)
  lines += changes_section(suite, table)
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return path
