"""The budget axis's report (`studies.budget_report`) on made-up results:
a changed order is called a change only where the data show it."""

import pytest

from drift_jax.studies import budget_report
from drift_jax.studies import suite as suite_lib

METRIC = 'eval/energy_distance_ratio'  # lower is better
SUITE = {'methods': [{'name': 'a', 'label': 'A'}, {'name': 'b'},
                     {'name': 'c'}]}


def _results(values):
  return [{'final': {METRIC: v}, 'status': 'ok', 'seed': i + 1}
          for i, v in enumerate(values)]


def _runs(a_long, b_long):
  """a is best at 20 s, c last at both; a and b at 600 s as given."""
  return {'a': {20: _results([1.0, 1.1, 0.9]), 600: _results(a_long)},
          'b': {20: _results([2.0, 2.2, 1.8]), 600: _results(b_long)},
          'c': {20: _results([5.0, 5.5, 4.5]), 600: _results([5, 5.5, 4.5])}}


def test_an_order_that_holds_is_said_to_hold():
  runs = _runs([0.5, 0.55, 0.45], [1.0, 1.1, 0.9])
  assert budget_report.changes(runs, [20, 600], METRIC) == []
  assert budget_report.sentence(SUITE, runs, [20, 600], METRIC) == (
      'At 20 s the order is A, b, c; at 600 s it holds.')


def test_a_clear_swap_is_a_change_and_a_noisy_one_is_not_shown():
  clear = _runs([3.0, 3.1, 2.9], [1.0, 1.02, 0.98])
  [(first, second, comparison, verdict)] = budget_report.changes(
      clear, [20, 600], METRIC)
  assert (first, second, verdict) == ('b', 'a', 'better')
  assert comparison.ratio == pytest.approx(1.0 / 3.0, rel=0.01)
  text = budget_report.sentence(SUITE, clear, [20, 600], METRIC)
  assert 'b now ranks above A (0.333×' in text
  assert text.endswith('1 of the changes shown.')
  noisy = _runs([1.2, 0.6, 2.0], [0.3, 2.5, 1.0])
  [(_, _, comparison, verdict)] = budget_report.changes(noisy, [20, 600],
                                                        METRIC)
  assert verdict == 'not shown to differ'
  assert 'not shown to differ (allows up to' in budget_report.sentence(
      SUITE, noisy, [20, 600], METRIC)


def test_the_tasks_own_budget_is_checked_first_then_the_shortest():
  own = {'budget_seconds': 20}
  assert budget_report.reference_budgets(own, [2, 20, 60]) == [20, 2]
  assert budget_report.reference_budgets(own, [20, 600]) == [20]
  assert budget_report.reference_budgets({'budget_seconds': 60},
                                         [2, 20, 60]) == [2]


def test_budget_tasks_and_their_checks():
  task = {'name': 'ring', 'config': 'configs/gmm.py', 'budget_seconds': 20,
          'eval_seed': 1, 'metric': METRIC, 'budgets': (600, 100)}
  derived = suite_lib.budget_tasks(task)
  assert [(t['name'], t['budget_seconds'], suite_lib.base_name(t))
          for t in derived] == [('ring@100s', 100, 'ring'),
                                ('ring@600s', 600, 'ring')]
  assert all('budgets' not in t and t['eval_seed'] == 1 for t in derived)
  suite = {'name': 's', 'tasks': [task], 'search_points': 1,
           'final_seeds': (1,),
           'methods': [{'name': 'a', 'search': {'optim.lr': (1e-3,)}}]}
  suite_lib.check_suite(suite)
  for bad in ((20,), (-1,), (100, 100)):
    task['budgets'] = bad
    with pytest.raises(ValueError, match='`budgets` must be distinct'):
      suite_lib.check_suite(suite)
