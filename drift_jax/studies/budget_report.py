"""The leaderboard's budget axis: rank against budget, with intervals, and
whether the ranking at the task's own budget (the leaderboard's), and at
the shortest, holds at the longest.

A task that declares `budgets` is run again at each (`harness.
run_budget_axis`): the axis methods (the finalists) at the point they chose
on the task's own budget, with the final seeds, each run's length (and its
cosine schedule's horizon) from its own budget. At the longest budget,
every pair of one-step methods whose order by geometric mean differs from
the task's own budget's (then the shortest's) is compared on the log
scale (Welch's t: the main budget's finalists have more seeds than the
others), with Holm's correction over those pairs, so a changed order is
called a change only where the data show it.
"""

from __future__ import annotations

import itertools
import math

from drift_jax import evaluators
from drift_jax import stats
from drift_jax.studies import harness
from drift_jax.studies import suite as suite_lib
from drift_jax.studies import verdicts


def axis(suite, task, table) -> tuple[list, dict]:
  """(budgets ascending, {method name: {budget: final results}}) of the
  axis methods that have every budget's final seeds."""
  tasks = sorted([task, *suite_lib.budget_tasks(task)],
                 key=lambda t: t['budget_seconds'])
  methods = harness.axis_methods(suite, task) or []
  out = {}
  for method in methods:
    runs = {t['budget_seconds']: table.get((t['name'], method['name']),
                                           {}).get('final', [])
            for t in tasks}
    if all(len(r) >= len(suite['final_seeds']) for r in runs.values()):
      out[method['name']] = runs
  return [t['budget_seconds'] for t in tasks], out


def order(runs: dict, budget, metric) -> list[str]:
  """Method names by `verdicts.rank` at `budget` (best first)."""
  lower = not evaluators.higher_is_better(metric)
  return sorted(runs, key=lambda n: verdicts.rank(runs[n][budget], metric,
                                                  lower))


def changes(runs: dict, budgets, metric) -> list[tuple]:
  """(a, b, comparison of a against b at budgets[-1], verdict after Holm)
  for each pair ranked a before b at budgets[-1] and b before a at
  budgets[0]."""
  first, last = order(runs, budgets[0], metric), order(runs, budgets[-1],
                                                       metric)
  swapped = [(a, b) for a, b in itertools.combinations(last, 2)
             if first.index(a) > first.index(b)]
  found = [verdicts.compare('welch', runs[a][budgets[-1]],
                            runs[b][budgets[-1]], metric)
           for a, b in swapped]
  said = stats.holm_verdicts(found)
  return [(a, b, c, v) for (a, b), c, v in zip(swapped, found, said,
                                                strict=True)]


def reference_budgets(task, budgets) -> list:
  """The budgets whose ranking is checked at the longest: the task's own
  (the leaderboard's: the question the axis answers), then the shortest,
  each once and never the longest itself."""
  own = task['budget_seconds']
  return [b for b in dict.fromkeys([own, budgets[0]]) if b != budgets[-1]]


def _cell(results, metric, place) -> str:
  """The interval and rank; a budget the method's precomputations alone
  exceed (`harness.DOES_NOT_FIT`) is named as such, not as a failure."""
  if results and all(r['status'] == harness.DOES_NOT_FIT for r in results):
    return f'does not fit ({place})'
  i = stats.mean_interval(verdicts.values(results, metric))
  return (f'{i.mean:.3g} [{i.low:.3g}, {i.high:.3g}] ({place})'
          if math.isfinite(i.mean) else f'failed ({place})')


def sentence(suite, runs, budgets, metric) -> str:
  """Whether the ranking at budgets[0] holds at budgets[-1]."""
  label = lambda n: verdicts.label_of(suite, n)
  first = order(runs, budgets[0], metric)
  found = changes(runs, budgets, metric)
  head = (f'At {budgets[0]:g} s the order is '
          f'{", ".join(map(label, first))}; at {budgets[-1]:g} s ')
  if not found:
    return head + 'it holds.'
  said = [f'{label(a)} now ranks above {label(b)} ('
          + (f'{c.ratio_text}, {v})'
             if v != stats.NOT_SHOWN else f'{c.describe(v)})')
          for a, b, c, v in found]
  shown = sum(v != stats.NOT_SHOWN for *_, v in found)
  pairs = ('1 pair changes' if len(found) == 1
           else f'{len(found)} pairs change')
  return (head + f'{pairs} order: {"; ".join(said)}. Holm over these '
          f'pairs: {shown} of the changes shown.')


def budget_section(suite, table) -> list[str]:
  """The 'Rank against budget' section ([] when no task has budgets)."""
  lines = []
  for task in suite['tasks']:
    if not task.get('budgets'):
      continue
    budgets, runs = axis(suite, task, table)
    metric = task['metric']
    lines += [f'### {task["name"]}', '']
    ranked = {n: r for n, r in runs.items()
              if not verdicts.not_competing(verdicts.method_of(suite, n))}
    if not ranked:
      lines += ['Pending: no axis method has every budget\'s runs yet.', '']
      continue
    places = {b: order(ranked, b, metric) for b in budgets}
    lines += ['| method | ' + ' | '.join(f'{b:g} s' for b in budgets)
              + ' |', '|---|' + '---|' * len(budgets)]
    for name, per_budget in runs.items():
      cells = [_cell(per_budget[b], metric,
                     places[b].index(name) + 1 if name in ranked else '—')
               for b in budgets]
      lines.append(f'| {verdicts.label_of(suite, name)} | '
                   + ' | '.join(cells) + ' |')
    said = [sentence(suite, ranked, [b, budgets[-1]], metric)
            for b in reference_budgets(task, budgets)]
    lines += ['', ' '.join(said), '']
  if not lines:
    return []
  return ['## Rank against budget', '',
          'Each task\'s headline metric, mean [95 % interval] over the test '
          'seeds, and '
          'the rank among the one-step methods by geometric mean (fewest '
          'failures first). Each method runs the point it chose on the '
          'task\'s own budget, for the steps each budget buys under the '
          'same calibration, its schedule fitted to that length; where '
          'its precomputations alone exceed a budget it "does not fit" '
          'and ranks after every method that trained, as failures do. '
          'A changed order is tested at the longest budget (Welch\'s t on '
          'the log '
          'scale, Holm over the changed pairs).', '', *lines]
