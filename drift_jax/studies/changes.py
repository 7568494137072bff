"""What moved between a suite and the suite it replaces (`previous`: the
path of the older suite file), generated from both suites' stored results
for the leaderboard's "What changed" section.

A claim is one of the verdicts a leaderboard states (`studies/verdicts.py`):
per task, the best one-step method on the headline metric and each other
one against it (a summary row, one Holm family per task); the default
method against each ranked rival (the headline's claims, one Holm family);
each multi-step reference against the default (one family per reference).
The summary rows and the headline are separate families, each with the
test its own table chose, so a pair can be "worse" in one and "not shown
to differ" in the other.
Both suites are judged by the same code on the same tasks: the tasks this
suite has finished (every method with all the test seeds it is due), so the
Holm families are alike in size, and the whole headline's once every task
is finished. A claim moved when its verdict did (or the best method
changed); an interval that merely narrowed is not a move.
"""

from __future__ import annotations

from typing import NamedTuple

from drift_jax import stats
from drift_jax.studies import harness
from drift_jax.studies import suite as suite_lib
from drift_jax.studies import verdicts


class Claim(NamedTuple):
  """One stated verdict: `key` (task, what is claimed), the short
  `verdict` that decides whether it moved, and `text` as it reads."""
  key: tuple
  verdict: str
  text: str


def finished_tasks(suite, table) -> list[str]:
  """The tasks on which every method is tuned and every method that
  applies has every test seed it is due."""
  out = []
  for task in suite['tasks']:
    if harness.finalists(suite, task) is None:  # still tuning
      continue
    methods = [m for m in suite['methods'] if suite_lib.applies(task, m)]
    done = verdicts.finished(suite, task, table)
    if methods and all(m['name'] in done for m in methods):
      out.append(task['name'])
  return out


def describe(comparison: stats.RatioComparison, verdict: str) -> str:
  """'better (0.42× [0.3, 0.6])', 'worse (...)' or 'not shown to differ
  (allows up to X×)'."""
  if verdict == stats.NOT_SHOWN:
    return comparison.describe(verdict)
  return f'{verdict} ({comparison.ratio_text})'


def claims(suite, table, tasks) -> dict:
  """{key: Claim} of the verdicts the suite's results state on `tasks`."""
  out = {}
  for row in verdicts.summary_rows(suite, table):
    if row['task'] not in tasks:
      continue
    best = row['best']
    key = (row['task'], 'best one-step method')
    out[key] = Claim(key, best, verdicts.label_of(suite, best))
    for other, comparison, verdict in row['claims']:
      # The summary row's claims are against its best: a new best moves
      # every one of them.
      key = (row['task'], f'{other} against the best')
      out[key] = Claim(key, f'{verdict} than {best}',
                       f'{best}: {describe(comparison, verdict)}')
  found = verdicts.default_claims(suite, table, tasks)
  if found is None:
    return out
  name = suite['default_method']
  for rival, task, comparison, verdict in found.rivals:
    key = (task['name'], f'{name} against {rival}')
    out[key] = Claim(key, verdict, describe(comparison, verdict))
  for reference, rows in found.references.items():
    for task, comparison, verdict in rows:
      key = (task['name'], f'{reference} against {name}')
      out[key] = Claim(key, verdict, describe(comparison, verdict))
  return out


def section(suite, table, previous, previous_table) -> list[str]:
  """The leaderboard's "What changed" section: every claim on the tasks
  this suite has finished, before and after, the moved ones named in a
  paragraph first."""
  tasks = [t for t in finished_tasks(suite, table)
           if t in {task['name'] for task in previous['tasks']}]
  lines = [f'## What changed from `{suite["previous"]}`', '']
  pending = [t['name'] for t in suite['tasks'] if t['name'] not in tasks]
  if not tasks:
    return lines + ['Pending: no task is finished in both suites yet.', '']
  before = claims(previous, previous_table, tasks)
  after = claims(suite, table, tasks)
  keys = [k for k in after if k in before]
  moved = [k for k in keys if before[k].verdict != after[k].verdict]
  scope = (f'the {len(tasks)} task{"s" * (len(tasks) > 1)} finished in '
           'both' if pending else f'all {len(tasks)} tasks')
  lines.append(
      f'Both suites\' stored results judged by the same code on {scope} '
      f'({", ".join(tasks)}; each suite\'s own test and Holm families over '
      f'these tasks). {len(moved)} of {len(keys)} claims moved'
      + (': ' + '; '.join(
          f'{k[0]}, {k[1]}: {before[k].text} → {after[k].text}'
          for k in moved) if moved else '')
      + '.' + (f' Pending: {", ".join(pending)}.' if pending else ''))
  new = [k for k in after if k not in before]
  if new:
    lines[-1] += (' New claims (no counterpart before): '
                  + '; '.join(f'{k[0]}, {k[1]}: {after[k].text}'
                              for k in new) + '.')
  lines += ['', f'| task | claim | `{suite["previous"]}` | this suite | '
            'moved |', '|---|---|---|---|---|']
  lines += [f'| {k[0]} | {k[1]} | {before[k].text} | {after[k].text} | '
            f'{"yes" if k in moved else ""} |' for k in keys]
  return lines + ['']

