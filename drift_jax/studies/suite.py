"""A comparison suite's declaration: tasks x methods, checked, and the plan
of runs it implies (`suites/core.py` is the model).

A task is a config, a budget in seconds of the calibration machine, the
fixed evaluation seed and the metric points are chosen on; a method is
overrides and a search space of exactly `search_points` points, the same
number for every method (equal tuning effort).
"""

from __future__ import annotations

import dataclasses
import itertools
import os

from drift_jax import evaluators
from drift_jax import methods
from drift_jax.config import config_lib

SUITE_KEYS = {'name', 'tasks', 'methods', 'search_points', 'final_seeds',
              'tuning_seed', 'floor_draws', 'data_draws', 'evals_per_run',
              'calibration_seconds', 'results', 'workdir', 'report',
              'figures', 'title', 'notes', 'default_method', 'finalists',
              'extend_edges', 'tuning_seeds', 'previous'}
# previous: the path of the suite file this one replaces (its leaderboard
# gains a "What changed" section, `studies/changes.py`).
# finalists: {'seeds': the finalists' test seeds (a superset of
# final_seeds), 'always': method names, 'best_rivals': how many of the
# other one-step methods, best on validation, join them}.
FINALIST_KEYS = {'seeds', 'always', 'best_rivals'}
TASK_KEYS = {'name', 'config', 'overrides', 'budget_seconds', 'eval_seed',
             'metric', 'metrics', 'needs', 'budgets'}
# budgets: further budgets in seconds (the budget axis, `budget_tasks`).
METHOD_KEYS = {'name', 'overrides', 'search', 'needs', 'label',
               'upper_bound', 'reference', 'bounds'}
# bounds: {search axis: (low, high)}, the open interval an axis's edge
# extensions stay inside (`edges.step_beyond`), e.g. a share in (0, 1).


def _check_finalists(suite) -> None:
  spec = suite.get('finalists')
  if not spec:
    return
  _check_keys('finalists', spec, FINALIST_KEYS, required=('seeds',))
  seeds = tuple(spec['seeds'])
  if not set(suite['final_seeds']) <= set(seeds) or suite.get(
      'tuning_seed', 0) in seeds:
    raise ValueError('`finalists.seeds` must contain every final seed and '
                     f'not the tuning seed, got {seeds}.')
  names = {m['name'] for m in suite['methods']}
  unknown = set(spec.get('always', ())) - names
  if unknown:
    raise ValueError(f'`finalists.always` names unknown methods '
                     f'{sorted(unknown)}; the suite has {sorted(names)}.')


def load_suite(path: str) -> dict:
  """A suite file's `get_suite()`, checked (ValueError naming the key)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Suite file {path!r} does not exist.')
  return check_suite(config_lib.load_module(path, '_suite').get_suite())


def check_suite(suite: dict) -> dict:
  """Unknown keys, duplicate names and unequal search spaces are errors:
  equal tuning means the same number of points for every method."""
  _check_keys('suite', suite, SUITE_KEYS, required=(
      'name', 'tasks', 'methods', 'search_points', 'final_seeds'))
  for kind, keys, required in (
      ('tasks', TASK_KEYS, ('name', 'config', 'budget_seconds', 'eval_seed',
                            'metric')),
      ('methods', METHOD_KEYS, ('name', 'search'))):
    names = [entry.get('name') for entry in suite[kind]]
    if len(set(names)) != len(names):
      raise ValueError(f'suite[{kind!r}]: duplicate names in {names}.')
    for entry in suite[kind]:
      _check_keys(f'{kind} {entry.get("name")!r}', entry, keys, required)
  n = suite['search_points']
  for method in suite['methods']:
    count = len(search_points(method))
    if count != n:
      raise ValueError(f'Method {method["name"]!r} declares {count} search '
                       f'points; every method must have search_points = {n} '
                       '(equal tuning effort).')
  if len(suite['final_seeds']) < 1 or set(tuning_seeds(suite)) & set(
      suite['final_seeds']):
    raise ValueError('`final_seeds` must be non-empty and must not contain '
                     'the tuning seed (the chosen point is retrained with '
                     'new seeds).')
  _check_finalists(suite)
  for method in suite['methods']:
    _check_bounds(method)
  for task in suite['tasks']:
    if not evaluators.positive(task['metric']):
      raise ValueError(
          f'Task {task["name"]!r}: `metric` {task["metric"]!r} may be <= 0; '
          'the leaderboard ranks on the log scale, so a task ranks by a '
          'positive metric (evaluators.Metric.positive: '
          f'{sorted(k for k in evaluators.metrics() if evaluators.positive(k))}'
          ').')
    if not task['budget_seconds'] > 0:
      raise ValueError(f'Task {task["name"]!r}: `budget_seconds` must be '
                       f'> 0, got {task["budget_seconds"]}.')
    _check_budgets(task)
  return suite


def _check_bounds(method) -> None:
  search = method['search']
  for axis, bound in method.get('bounds', {}).items():
    values = search.get(axis, ()) if isinstance(search, dict) else ()
    if not values or not (len(bound) == 2 and all(
        bound[0] < v < bound[1] for v in values)):
      raise ValueError(f'Method {method["name"]!r}: `bounds[{axis!r}]` must '
                       'be (low, high) around the values of a search axis '
                       f'of that name, got {bound} for {list(values)}.')


def _check_budgets(task) -> None:
  budgets = list(task.get('budgets', ()))
  if any(not isinstance(b, (int, float)) or not b > 0 for b in budgets) or (
      len(set(budgets + [task['budget_seconds']])) != len(budgets) + 1):
    raise ValueError(f'Task {task["name"]!r}: `budgets` must be distinct '
                     'positive seconds other than `budget_seconds` '
                     f'({task["budget_seconds"]}), got {budgets}.')


def _check_keys(where, entry, allowed, required):
  unknown = set(entry) - allowed
  missing = [k for k in required if k not in entry]
  if unknown or missing:
    raise ValueError(f'{where}: unknown keys {sorted(unknown)}, missing '
                     f'{missing} (allowed: {sorted(allowed)}).')


def search_points(method: dict) -> list[dict]:
  """The search space as a list of override dicts: `search` is either a
  dict of axes (their Cartesian product) or an explicit list of dicts."""
  search = method['search']
  if isinstance(search, (list, tuple)):
    return [dict(p) for p in search]
  axes = list(search)
  return [dict(zip(axes, values, strict=True))
          for values in itertools.product(*(search[a] for a in axes))]


def applies(task: dict, method: dict) -> bool:
  """A method that needs something (e.g. 'mixture': an exact oracle) runs
  only on the tasks that declare it."""
  return set(method.get('needs', ())) <= set(task.get('needs', ()))


def config_with_overrides(spec: str, overrides: dict):
  """The config file `spec` ('FILE:ARGS') with dotted-key `overrides`,
  then the file's method-dependent defaults on the keys they did not set
  (`methods.finalize`); what every study point is trained with."""
  config = config_lib.load_config_file(spec)
  for key, value in overrides.items():
    config_lib.set_by_path(config, key, value)
  return methods.finalize(config, overridden=tuple(overrides))


def point_config(task, method, point_overrides):
  """The task's config with the method's and the point's overrides."""
  return config_with_overrides(
      task['config'], {**task.get('overrides', {}),
                       **method.get('overrides', {}), **point_overrides})


def check_cell(task, method, device_count: int, points=None) -> None:
  """Every search point of the cell (`points`, by default the declared
  ones) makes a config that passes the start-up checks
  (`methods.validate`), so a dry run catches a bad cell before hours are
  spent: ValueError naming the cell and the point by its overrides (an
  index would mean nothing for an extension, which is not declared)."""
  for point in points or search_points(method):
    try:
      methods.validate(point_config(task, method, point), device_count)
    except ValueError as e:
      raise ValueError(f'{task["name"]}/{method["name"]} point {point}: '
                       f'{e}') from e


def tuning_seeds(suite) -> tuple:
  """The seeds every search point is trained with on validation
  (`tuning_seeds`, or the one `tuning_seed`); a point's score is their
  mean."""
  return tuple(suite.get('tuning_seeds') or (suite.get('tuning_seed', 0),))


def results_dir(suite):
  return suite.get('results', os.path.join('results', suite['name']))


def work_root(suite):
  return suite.get('workdir', os.path.join('runs', 'compare', suite['name']))


def budget_tasks(task) -> list[dict]:
  """The task at each of its further `budgets` (the budget axis), in
  increasing order: the same config, data, evaluation sets and metric,
  named 'TASK@Bs', with `base` naming the task. Each run's length, and
  with it a cosine schedule's horizon, follows its own budget."""
  out = []
  for b in sorted(task.get('budgets', ())):
    derived = {k: v for k, v in task.items() if k != 'budgets'}
    derived.update(name=f'{task["name"]}@{b:g}s', budget_seconds=b,
                   base=task['name'])
    out.append(derived)
  return out


def base_name(task) -> str:
  """The task a budget-axis task derives from (itself otherwise): its
  calibration, tuning, data row and classifier are the base task's."""
  return task.get('base', task['name'])


def selected(name: str, only) -> bool:
  """Whether `name` is among `only` (`--tasks` / `--methods`; None: all)."""
  return not only or name in only


def plan(suite, only_tasks=None, only_methods=None):
  """[(task, method)] in the order they run: task by task."""
  return [(t, m) for t in suite['tasks'] for m in suite['methods']
          if applies(t, m) and selected(t['name'], only_tasks)
          and selected(m['name'], only_methods)]


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of the plan."""
  task: dict
  method: dict
  phase: str  # 'tune', 'final' or 'default' (the cross-task config)
  point: int  # index into the cell's points (`harness.tuned_points`)
  seed: int
  point_overrides: dict | None = None  # those of the point; None: declared
  first_tuning_seed: bool = True  # a tuning run's name has no seed then

  @property
  def overrides(self) -> dict:
    """The point's overrides (a declared point's when not given)."""
    if self.point_overrides is not None:
      return self.point_overrides
    return search_points(self.method)[self.point]

  @property
  def name(self):
    if self.phase == 'tune':
      return f'tune_p{self.point}' + (
          '' if self.first_tuning_seed else f'_seed{self.seed}')
    return f'{self.phase}_seed{self.seed}'

  def result_path(self, suite):
    return os.path.join(results_dir(suite), self.task['name'],
                        self.method['name'], f'{self.name}.json')

  def workdir(self, suite):
    return os.path.join(work_root(suite), self.task['name'],
                        self.method['name'], self.name)
