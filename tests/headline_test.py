"""The README's headline is the one the leaderboard generates from the
stored verdicts (`verdicts.headline` over the stored results of the suite
the README quotes, `README_SUITE`)."""

import os
import re

import numpy as np

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.studies import budget as budget_lib
from drift_jax.studies import harness
from drift_jax.studies import leaderboard
from drift_jax.studies import suite as suite_lib
from drift_jax.studies import verdicts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The suite whose headline the README quotes, and whose leaderboard these
# tests read (the powered protocol; `suites/core.py` before it: this line
# and the README's quoted block move together).
README_SUITE = 'core_v2.py'


def _quoted(text):
  match = re.search(r'<!-- headline -->\n(.*?)\n<!-- /headline -->', text,
                    re.S)
  assert match, 'no <!-- headline --> block'
  return match.group(1).split('\n')


def test_readme_headline_is_the_generated_one():
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', README_SUITE))
  suite['results'] = os.path.join(ROOT, suite_lib.results_dir(suite))
  generated = verdicts.headline(suite, leaderboard.load(suite))
  assert generated, 'the stored results give no headline'
  with open(os.path.join(ROOT, 'README.md')) as f:
    readme = _quoted(f.read())
  assert readme == generated
  with open(os.path.join(ROOT, leaderboard.report_path(suite))) as f:
    board = f.read()
  assert '\n'.join(generated) in board


def test_headline_reports_what_the_data_allow():
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', README_SUITE))
  suite['results'] = os.path.join(ROOT, suite_lib.results_dir(suite))
  text = ' '.join(verdicts.headline(suite, leaderboard.load(suite)))
  assert 'Holm-corrected' in text and 'not beaten' not in text
  assert re.search(r'up to [\d.]+× worse', text)
  assert re.search(r'detects ratios of [\d.]+–[\d.]+× at 80 % power', text)


def test_readme_main_job_is_the_leaderboards_checkerboard_run():
  """README command 1 trains the leaderboard's default drifting config
  (its cross-task point) for its steps on the checkerboard and scores on
  that task's evaluation sets, and the interval the README quotes is the
  stored one."""
  with open(os.path.join(ROOT, 'README.md')) as f:
    readme = f.read()
  command = next(line for line in readme.splitlines()
                 if 'experiments.main' in line and 'pip install' in line)
  steps = int(re.search(r'--config\.train\.steps=(\d+)', command).group(1))
  seed = int(re.search(r'--config\.eval\.seed=(\d+)', command).group(1))
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', README_SUITE))
  suite['results'] = os.path.join(ROOT, suite_lib.results_dir(suite))
  table = leaderboard.load(suite)
  task = next(t for t in suite['tasks'] if t['name'] == 'checkerboard')
  assert 'dataset=checkerboard' in command and task['eval_seed'] == seed
  # The suite's default config (its one cross-task point) on the task.
  point = harness.cross_task_point(suite, verdicts.method_of(
      suite, suite['default_method']))
  runs, _ = leaderboard.default_runs(suite, task, table, point)
  assert runs, 'the default config has no checkerboard test runs yet'
  assert {r['steps'] for r in runs} == {steps}
  # ... which is the config file's default.
  config = methods.finalize(config_lib.load_config_file(
      'configs/toy2d.py:dataset=checkerboard'))
  for key, value in runs[0]['overrides'].items():
    assert tuple(np.ravel(budget_lib.config_value(config, key))) == tuple(
        np.ravel(value)), key
  quoted = str(leaderboard.interval(runs, task['metric']))
  low_high = quoted.split(' ', 1)
  assert f'**{low_high[0]}× {low_high[1]}**' in readme
  draws = [{'status': 'ok', 'final': d}
           for d in table[('checkerboard', None)]['draws']]
  data = str(leaderboard.interval(draws, task['metric'])).split(' ', 1)
  assert f'{data[0]}× {data[1]}' in readme


def _table_problems(lines):
  """Rows a Markdown renderer would drop or shift: a table row that does
  not start with '|' next to table rows, or one whose cell count differs
  from its header's."""
  problems, header = [], None
  for number, line in enumerate(lines):
    stripped = line.strip()
    if stripped.startswith('|'):
      cells = len(stripped.strip('|').split('|'))
      header = cells if header is None else header
      if cells != header:
        problems.append(f'{number}: {cells} cells, header {header}: {line}')
    else:
      if header is not None and '|' in stripped:
        problems.append(f'{number}: outside the table pipes: {line}')
      header = None
  return problems


def test_every_generated_table_parses():
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', README_SUITE))
  suite['results'] = os.path.join(ROOT, suite_lib.results_dir(suite))
  table = leaderboard.load(suite)
  lines = leaderboard.default_section(suite, table)
  lines += leaderboard.summary_section(suite, table)
  for task in suite['tasks']:
    lines += [''] + leaderboard.tuning_table(suite, task, table)
  assert any(line.startswith('| **') for line in lines)  # the chosen row
  assert not _table_problems(lines)
  with open(os.path.join(ROOT, leaderboard.report_path(suite))) as f:
    assert not _table_problems(f.read().split('\n'))
  # The check itself: the old bold row (outside the pipes) is caught.
  assert _table_problems(['| a | b |', '|---|---|', '**| x | 1 |**'])
