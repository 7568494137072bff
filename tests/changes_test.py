"""The leaderboard's "What changed" section (`studies/changes.py`): every
claim of both suites on the tasks both finished, and exactly the moved
ones named, from the stored results of `results/core/`."""

import glob
import json
import os
import shutil

import pytest

from drift_jax.studies import changes
from drift_jax.studies import leaderboard
from drift_jax.studies import suite as suite_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRIC = 'eval/energy_distance_ratio'


def _core():
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', 'core.py'))
  suite['results'] = os.path.join(ROOT, suite_lib.results_dir(suite))
  return suite


@pytest.fixture
def copied(tmp_path):
  """(the core suite, the same suite over a copy of its results in
  tmp_path, replacing it)."""
  previous = _core()
  suite = {**previous, 'results': str(tmp_path / 'core'),
           'previous': 'suites/core.py'}
  shutil.copytree(previous['results'], suite['results'],
                  ignore=shutil.ignore_patterns('lock*'))
  return previous, suite


def _section(previous, suite):
  return changes.section(suite, leaderboard.load(suite), previous,
                         leaderboard.load(previous))


def test_the_same_results_move_no_claim(copied):
  previous, suite = copied
  text = '\n'.join(_section(previous, suite))
  # 6 tasks: the best of each and the 6 others against it (the summary
  # rows, 42), drifting against its 6 one-step rivals on each (36, the
  # headline's), the diffusion reference against it (6).
  assert '0 of 84 claims moved.' in text
  assert 'all 6 tasks' in text and 'Pending' not in text
  rows = [line for line in text.splitlines() if line.startswith('| ')][1:]
  assert len(rows) == 84 and not any(r.endswith('| yes |') for r in rows)


def test_a_rival_made_100x_worse_moves_its_claim(copied):
  previous, suite = copied
  for path in glob.glob(os.path.join(suite['results'], 'checkerboard', 'mmd',
                                     'final_seed*.json')):
    with open(path) as f:
      result = json.load(f)
    result['final'][METRIC] *= 100
    with open(path, 'w') as f:
      json.dump(result, f)
  text = '\n'.join(_section(previous, suite))
  # The stored core verdict, and the new one: drifting now better.
  assert ('checkerboard, drifting against mmd: not shown to differ '
          '(allows up to ') in text
  moved = text.split('claims moved: ')[1].split('\n')[0]
  assert '→ better (' in moved.split('checkerboard, drifting against mmd')[1]
  rows = [line for line in text.splitlines() if line.startswith('| ')][1:]
  flagged = {tuple(r.split(' | ')[:2]) for r in rows if r.endswith('| yes |')}
  assert ('| checkerboard', 'drifting against mmd') in flagged
  # Nothing else moves: the other tasks' results are untouched (through
  # Holm's step-down they could move only if a p-value sat at its margin,
  # and none in results/core does).
  assert all(task == '| checkerboard' for task, _ in flagged)


def test_an_unfinished_task_is_pending(copied):
  previous, suite = copied
  for path in glob.glob(os.path.join(suite['results'], 'digits', 'drifting',
                                     'final_seed3.json')):
    os.remove(path)
  text = '\n'.join(_section(previous, suite))
  assert 'Pending: digits.' in text and 'the 5 tasks finished in both' in text
