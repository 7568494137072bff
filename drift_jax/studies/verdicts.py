"""What a suite's stored results allow one to say, with its power: the
leaderboard's summary rows and the README's headline, both generated from
the stored final runs (`leaderboard.write` prints them).

Every comparison is on the log of the task's (positive) headline metric,
with the interval of the ratio (`stats.log_ratio_comparison`). One test
serves a whole table, chosen by one rule (`stats.choose_test`). Holm's
correction runs over the claims one sentence makes: a summary row ("the
best is better than ..."), the headline (the default method against every
ranked rival on every task), each reference's sentence. A claim not made
gives the ratios the data still allow and the ratio the design detects at
80 % power. Oracle-teacher rows (`upper_bound`) and multi-step references
(`reference`) are never ranked among the one-step generators.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from drift_jax import evaluators
from drift_jax import stats
from drift_jax.studies import harness
from drift_jax.studies import suite as suite_lib

TEST_NAMES = {'paired': 'a paired t', 'welch': 'Welch\'s t'}
VERDICT_PROTOCOL = (
    'Comparisons are on the log of the metric, with the interval of the '
    'ratio; the test is {test} for this table, chosen by one rule '
    '(`stats.choose_test`: paired where pairing narrows the intervals, '
    'i.e. the median over the table\'s comparisons of the paired '
    'half-width over Welch\'s is below 1; Welch otherwise).')


def values(results, metric) -> np.ndarray:
  """The metric over runs; a failed run is NaN (counted, never dropped)."""
  return np.array([r['final'].get(metric, math.nan)
                   if r['status'] == 'ok' else math.nan for r in results],
                  np.float64)


def method_of(suite, name):
  return next(m for m in suite['methods'] if m['name'] == name)


def label_of(suite, name):
  return method_of(suite, name).get('label', name)


def not_competing(method) -> bool:
  """Oracle-teacher rows (an upper bound at no teacher cost) and
  multi-step references are shown, never ranked among the one-step
  generators."""
  return bool(method.get('upper_bound') or method.get('reference'))


def finished(suite, task, table) -> dict:
  """{method name: final results} of the methods with every test seed
  they are due (`harness.due_seeds`: the finalists have more)."""
  out = {}
  for m in suite['methods']:
    final = table.get((task['name'], m['name']), {}).get('final', [])
    if final and len(final) == len(harness.due_seeds(suite, task, m)):
      out[m['name']] = final
  return out


def common_seeds(a_results, b_results, metric):
  """The metric of both over the seeds both have, in seed order."""
  seeds = sorted({r['seed'] for r in a_results}
                 & {r['seed'] for r in b_results})
  pick = lambda rs: values(sorted((r for r in rs if r['seed'] in seeds),
                                  key=lambda r: r['seed']), metric)
  return pick(a_results), pick(b_results)


def compare(test, a_results, b_results, metric) -> stats.RatioComparison:
  """a against b on the log scale (`suite.check_suite` admits only
  positive headline metrics): paired over their common seeds, Welch over
  all of each one's seeds."""
  if test == 'paired':
    a, b = common_seeds(a_results, b_results, metric)
  else:
    a, b = values(a_results, metric), values(b_results, metric)
  return stats.log_ratio_comparison(
      a, b, test=test, lower_is_better=not evaluators.higher_is_better(
          metric))


def table_test(pairs, metric_of) -> str:
  """`stats.choose_test` over one table's comparisons: (a results, b
  results, task) triples, paired on their common seeds."""
  logs = []
  for a, b, task in pairs:
    va, vb = common_seeds(a, b, metric_of(task))
    logs.append((np.log(va), np.log(vb)))
  return stats.choose_test(logs)


def rank(results, metric, lower):
  """Fewest failures first, then the best geometric mean."""
  v = values(results, metric)
  finite = v[np.isfinite(v)]
  failed = int(v.size - finite.size)
  if not finite.size:
    return (failed, math.inf)
  centre = float(np.mean(np.log(finite)))
  return (failed, centre if lower else -centre)


def summary_rows(suite, table) -> list[dict]:
  """Per task: the best competing method on the headline metric and
  `claims`, (other, its comparison with the best, verdict after Holm over
  the row) for every other competing method."""
  cells = []
  for task in suite['tasks']:
    metric = task['metric']
    lower = not evaluators.higher_is_better(metric)
    done = finished(suite, task, table)
    vals = {n: r for n, r in done.items()
            if not not_competing(method_of(suite, n))}
    if not vals:
      continue
    best = min(vals, key=lambda n: rank(done[n], metric, lower))
    cells.append((task, best, [n for n in vals if n != best], vals, done))
  test = table_test([(v[best], v[n], t) for t, best, others, v, _ in cells
                     for n in others], lambda t: t['metric'])
  rows = []
  for task, best, others, vals, done in cells:
    found = [compare(test, vals[n], vals[best], task['metric'])
             for n in others]
    said = stats.holm_verdicts(found)
    rows.append({
        'task': task['name'], 'metric': task['metric'], 'best': best,
        'test': test,
        'claims': list(zip(others, found, said, strict=True)),
        'pending': [m['name'] for m in suite['methods']
                    if suite_lib.applies(task, m) and m['name'] not in done]})
  return rows


class DefaultClaims(NamedTuple):
  """The headline's claims: the `test`; `rivals`, (rival, task,
  comparison, verdict after Holm over all of them); `references`,
  {reference: [(task, comparison of it against the default, verdict after
  Holm over its tasks)]}."""
  test: str
  rivals: list
  references: dict


def default_claims(suite, table, tasks=None) -> DefaultClaims | None:
  """The suite's `default_method` against every other ranked one-step
  method on each of `tasks` (default: all of the suite's), one Holm
  family, and each multi-step reference against it, one family each.
  None while one of those tasks lacks the default method's test seeds."""
  name = suite.get('default_method')
  pairs = _default_pairs(suite, table, name, tasks) if name else None
  if not pairs or not pairs[0]:
    return None
  rivals, references = pairs
  test = table_test([(a, b, t) for _, t, a, b in rivals + references],
                    lambda t: t['metric'])
  compared = [(o, t, compare(test, a, b, t['metric']))
              for o, t, a, b in rivals]
  said = stats.holm_verdicts([c for *_, c in compared])
  by_reference = {}
  for other, task, a, b in references:
    by_reference.setdefault(other, []).append(
        (task, compare(test, b, a, task['metric'])))
  return DefaultClaims(
      test, [(*c, v) for c, v in zip(compared, said, strict=True)],
      {other: [(*r, v) for r, v in zip(
          rows, stats.holm_verdicts([c for _, c in rows]), strict=True)]
       for other, rows in by_reference.items()})


def headline(suite, table) -> list[str]:
  """The README's headline (`default_claims` in sentences). Empty until
  every task has the default method's test seeds."""
  claims = default_claims(suite, table)
  if claims is None:
    return []
  name = suite['default_method']
  lines = _rival_sentences(suite, name, claims.test, claims.rivals)
  for other, rows in claims.references.items():
    verdicts = [v for *_, v in rows]
    parts = [f'{v} on ' + ', '.join(
        t['name'] for t, _, w in rows if w == v)
             for v in (stats.BETTER, stats.WORSE, stats.NOT_SHOWN)
             if v in verdicts]
    lines.append(f'The {label_of(suite, other)}, trained for the same time, '
                 f'against {name} (Holm over its {len(rows)} tasks): '
                 + '; '.join(parts) + '.')
  return lines


def _default_pairs(suite, table, name, tasks=None):
  """([(rival, task, ours, theirs)], [the same for references]) on
  `tasks` (task names; default all), or None while one of them lacks the
  default method's test seeds."""
  rivals, references = [], []
  for task in suite['tasks']:
    if tasks is not None and task['name'] not in tasks:
      continue
    if not suite_lib.applies(task, method_of(suite, name)):
      continue
    done = finished(suite, task, table)
    if name not in done:
      return None
    for other, results in done.items():
      method = method_of(suite, other)
      if other == name or method.get('upper_bound'):
        continue
      (references if method.get('reference') else rivals).append(
          (other, task, done[name], results))
  return rivals, references


def seeds_phrase(suite) -> str:
  """'3 test seeds', or with finalists '3 test seeds (10 for the
  finalists)'."""
  phrase = f'{len(suite["final_seeds"])} test seeds'
  finalists = suite.get('finalists')
  if finalists:
    phrase += f' ({len(finalists["seeds"])} for the finalists)'
  return phrase


def _rival_sentences(suite, name, test, rivals) -> list[str]:
  """`DefaultClaims.rivals` in the headline's sentences."""
  method = method_of(suite, name)
  budgets = sorted({t['budget_seconds'] for t in suite['tasks']})
  tasks = {t['name'] for _, t, _, _ in rivals}
  said = [v for *_, v in rivals]

  def grouped(verdict):
    by_rival = {}
    for other, task, _, v in rivals:
      if v == verdict:
        by_rival.setdefault(other, []).append(task['name'])
    return '; '.join(f'{label_of(suite, o)} ({", ".join(ts)})'
                     for o, ts in by_rival.items()) or 'none'

  count = {v: said.count(v) for v in (stats.BETTER, stats.WORSE,
                                      stats.NOT_SHOWN)}
  lines = [
      f'At equal compute ({" or ".join(f"{b:g}" for b in budgets)} s of the '
      'calibration CPU per run, a DMD teacher\'s training paid from it), '
      f'equal tuning ({suite["search_points"]} points per method, chosen on '
      f'a validation set) and {seeds_phrase(suite)}, '
      f'{method.get("label", name)} against each other one-step generator '
      f'on each of {len(tasks)} tasks ({len(rivals)} comparisons, '
      f'{TEST_NAMES[test]} on the log ratios, Holm-corrected over all '
      f'{len(rivals)}): better in {count[stats.BETTER]}, worse in '
      f'{count[stats.WORSE]}, not shown to differ in '
      f'{count[stats.NOT_SHOWN]}.',
      f'Better than: {grouped(stats.BETTER)}.',
      f'Worse than: {grouped(stats.WORSE)}.']
  tied = [(o, t, c) for o, t, c, v in rivals
          if v == stats.NOT_SHOWN and math.isfinite(c.high)]
  if tied:
    other, task, worst = max(tied, key=lambda x: x[2].high)
    lines.append(
        f'Where not shown to differ, the data allow {name} to be up to '
        f'{worst.high:.3g}× worse ({label_of(suite, other)}, '
        f'{task["name"]}); the design detects ratios of '
        f'{min(c.detectable for *_, c in tied):.3g}–'
        f'{max(c.detectable for *_, c in tied):.3g}× at 80 % power.')
  return lines
