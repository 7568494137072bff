"""The fair comparison harness: a suite of tasks x methods at equal compute
and equal tuning effort, several seeds, intervals (docs/leaderboard.md).

For each task and method the harness
1. calibrates seconds per training step once (`budget.calibrate`) and
   converts the task's budget into steps, split over the run and the
   prerequisites its method trains itself (`budget.split_budget`), so that
   every later run is deterministic in its length;
2. trains every search point once (seed `tuning_seed`), scored on the
   *validation* split (`eval.split`), and chooses the best by the task's
   metric (a failed point never wins);
3. trains the chosen point with `final_seeds` new seeds, scored on the
   test split;
4. scores a *data row*: `data_draws` independent draws of the data scored
   exactly like samples, where a perfect sampler lands.

Every run of a task uses the same held-out and floor sets (`eval.seed`),
floors average `floor_draws` reference draws, and each run's result is a
small JSON file of the store (`studies.store`): a result already there is
never trained again, and an interrupted run resumes from its checkpoints.
"""

from __future__ import annotations

import math
import os
import time

import jax
import numpy as np

from drift_jax import evaluators
from drift_jax.data import datasets as data_lib
from drift_jax.studies import budget as budget_lib
from drift_jax.studies import edges
from drift_jax.studies import provenance
from drift_jax.studies import store
from drift_jax.studies import suite as suite_lib
from drift_jax.studies.budget import Budget
from drift_jax.studies.suite import Run
from drift_jax.studies.suite import applies
from drift_jax.studies.suite import plan
from drift_jax.studies.suite import point_config
from drift_jax.studies.suite import search_points
from drift_jax.studies.suite import work_root
from drift_jax.train import preemption
from drift_jax.train import reporting
from drift_jax.train import runner
from drift_jax.train import workdir as workdir_lib

DATA_ROW_SALT = data_lib.DATA_ROW_SALT


def run_config(suite, run: Run, budget: Budget, classifier_dir=None):
  """The config a run trains with: its length (and its prerequisites')
  from the budget, evaluated `evals_per_run` times on the fixed sets of
  its split."""
  config = point_config(run.task, run.method, run.overrides)
  k = config.train.steps_per_call
  every = max(k, budget.steps // suite.get('evals_per_run', 8) // k * k)
  config.seed = run.seed
  budget_lib.apply_budget(config, budget)
  config.train.update(eval_every=every, log_every=every,
                      checkpoint_every=every, progress=False)
  config.eval.update(seed=run.task['eval_seed'], plot=False,
                     split=run_split(run),
                     floor_draws=suite.get('floor_draws', 10))
  if classifier_dir is not None:
    config.eval.classifier = classifier_dir
  return config


def run_split(run: Run) -> str:
  """Tuning runs are scored on validation, every other run on test."""
  return 'validation' if run.phase == 'tune' else 'test'


def result_head(run: Run) -> dict:
  """The keys that name a run in its stored result, first in every one."""
  return {'task': run.task['name'], 'method': run.method['name'],
          'phase': run.phase, 'point': run.point, 'seed': run.seed,
          'overrides': store.jsonable(run.overrides), 'split': run_split(run)}


def execute(suite, run: Run, budget: Budget, classifier_dir=None) -> dict:
  """Trains (or resumes) one run and stores its result; a run that
  diverges or produces non-finite samples is stored as failed."""
  config = run_config(suite, run, budget, classifier_dir)
  workdir = run.workdir(suite)
  result = {**result_head(run), 'steps': budget.steps,
            'prerequisites': {
                name: {'steps': p.steps,
                       'seconds_per_step': p.seconds_per_step}
                for name, p in budget.prerequisites.items()},
            'setups': dict(budget.setups),
            'charged_seconds': budget.charged_seconds,
            'seconds_per_step': budget.seconds_per_step,
            'provenance': provenance.of_run(run.task, config, budget),
            'config': provenance.resolved_config(config)}
  print(f'running {run.task["name"]}/{run.method["name"]}/{run.name}: '
        f'{budget.describe()} ({budget.charged_seconds:.3g} s charged)',
        flush=True)
  start = time.perf_counter()
  try:
    summary = runner.train_and_evaluate(config, workdir)
    error = None
  except FloatingPointError as e:  # diverged: a failure, never dropped
    summary, error = {}, str(e)
  result['wall_seconds'] = time.perf_counter() - start
  result['curve'] = curve(workdir, budget)
  result['final'] = store.kept(summary)
  value = result['final'].get(run.task['metric'], math.nan)
  if error is None and not math.isfinite(value):
    error = f'{run.task["metric"]} is {value} at the end of the run'
  result['status'] = 'failed' if error else 'ok'
  result['error'] = error
  if (error is None and run.phase == 'final'
      and run.seed == suite['final_seeds'][0]):
    save_sample_grid(suite, run, config, workdir)
  store.write_json(run.result_path(suite), result)
  return result


def save_sample_grid(suite, run: Run, config, workdir) -> None:
  """The sample grid of an image task's first final run, one row per
  class when conditional, kept beside the results for the leaderboard
  (`store.samples_path`); nothing for non-image data."""
  samples_file = os.path.join(workdir, workdir_lib.SAMPLES_FILE)
  if not os.path.isfile(samples_file):
    return
  dataset = data_lib.for_run(config)
  if dataset.image_shape is None:
    return
  path = store.samples_path(suite, run.task, run.method)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  conditional = config.conditional.enabled and dataset.num_classes > 1
  label = run.method.get('label', run.method['name'])
  reporting.plot_image_grid(
      path, np.load(samples_file), dataset.image_shape,
      f'{label}, {run.task["name"]}, test seed {run.seed}',
      num_classes=dataset.num_classes if conditional else 0)


def curve(workdir, budget: Budget) -> list[dict]:
  """Quality against charged seconds (prerequisites included) at every
  evaluation the run logged."""
  points = []
  for record in reporting.read_metrics(workdir):
    if 'eval/energy_distance' not in record:
      continue
    points.append({'step': record['step'],
                   'charged_seconds': (budget.prerequisite_seconds()
                                       + record['step']
                                       * budget.seconds_per_step),
                   'wall_seconds': record.get('time/total_wall_seconds'),
                   **store.kept(record)})
  return points


def point_scores(results: list[dict], metric: str) -> dict[int, float]:
  """{point: the mean validation `metric` over its tuning seeds}; inf
  for a point with a failed or non-finite seed."""
  by_point = {}
  for r in results:
    value = r['final'].get(metric, math.nan)
    ok = r['status'] == 'ok' and math.isfinite(value)
    by_point.setdefault(r['point'], []).append(value if ok else math.inf)
  return {p: sum(v) / len(v) for p, v in by_point.items()}


def choose(results: list[dict], metric: str) -> int:
  """Index of the search point with the lowest validation `metric`, its
  mean over the tuning seeds (a failed or non-finite point never wins;
  ties go to the first point)."""
  if not results:
    raise ValueError('No tuning results to choose from.')
  for r in results:
    if r['split'] != 'validation':
      raise ValueError(f'Tuning result of point {r["point"]} was scored on '
                       f'{r["split"]!r}; points are chosen on validation.')
  scores = point_scores(results, metric)
  return min(scores, key=lambda p: (scores[p], p))


def run_cell(suite, task, method, *, dry_run=False, classifier_dir=None):
  """Tunes one method on one task, then trains the chosen point with the
  final seeds. Returns the runs still to do (dry run) or done."""
  calibration = budget_lib.current_calibration(suite, task, method)
  if dry_run:
    suite_lib.check_cell(task, method, jax.device_count(),
                         edges.reachable_points(suite, method))
  if calibration is None and dry_run:
    return [f'{task["name"]}/{method["name"]}: calibrate, then '
            f'{len(search_points(method))} tuning and '
            f'{len(suite["final_seeds"])} final runs']
  if calibration is None:
    preemption.stop_if_requested(
        f'calibrating {task["name"]}/{method["name"]}')
    calibration = budget_lib.calibrate(suite, task, method)
  todo, tuned, seeds = [], {}, suite_lib.tuning_seeds(suite)
  while True:  # the declared points, then any edge extensions they call for
    points = tuned_points(suite, task, method, list(tuned.values()))
    missing = [(i, s) for i in range(len(points)) for s in seeds
               if (i, s) not in tuned]
    if not missing:
      break
    for i, s in missing:
      run = Run(task, method, 'tune', i, s, points[i], s == seeds[0])
      result = _result_or_run(suite, run, calibration, points[i], dry_run,
                              classifier_dir, todo)
      if result is None:
        return todo + [f'{task["name"]}/{method["name"]}/final (after '
                       'tuning)']
      tuned[(i, s)] = result
  chosen = choose(list(tuned.values()), task['metric'])
  for seed in suite['final_seeds']:
    run = Run(task, method, 'final', chosen, seed, points[chosen])
    _result_or_run(suite, run, calibration, points[chosen], dry_run,
                   classifier_dir, todo)
  return todo


def tuned_points(suite, task, method, tuned=None) -> list[dict]:
  """The cell's search points (`edges.cell_points`: the declared ones,
  then the edge extensions the tuning results call for), from `tuned` or
  the stored tuning results."""
  if tuned is None:
    tuned = store.stored_cell(suite, task, method)['tune']
  return edges.cell_points(suite, method, tuned,
                           lambda rs: choose(rs, task['metric']))


def finalists(suite, task) -> set | None:
  """The methods of `task` that get the suite's `finalists['seeds']`
  (fixed in advance: no optional stopping): the `always` ones, and the
  `best_rivals` best other one-step methods by their chosen point's
  validation metric. None until every method of the task is tuned; an
  empty set when the suite has no finalists."""
  spec = suite.get('finalists')
  if not spec:
    return set()
  metric, chosen = task['metric'], {}
  for method in suite['methods']:
    if not applies(task, method):
      continue
    tuned = store.stored_cell(suite, task, method)['tune']
    if len(tuned) < len(tuned_points(suite, task, method, tuned)) * len(
        suite_lib.tuning_seeds(suite)):
      return None
    chosen[method['name']] = point_scores(tuned, metric)[
        choose(tuned, metric)]
  always = {n for n in spec.get('always', ()) if n in chosen}
  sign = -1 if evaluators.higher_is_better(metric) else 1
  rivals = sorted((n for n, m in ((m['name'], m) for m in suite['methods'])
                   if n in chosen and n not in always
                   and not (m.get('upper_bound') or m.get('reference'))),
                  key=lambda n: sign * chosen[n])
  return always | set(rivals[:spec.get('best_rivals', 0)])


def due_seeds(suite, task, method) -> tuple:
  """The test seeds a method's chosen point is trained with on `task`:
  the finalists' seeds for a finalist, `final_seeds` otherwise."""
  names = finalists(suite, task)
  if names and method['name'] in names:
    return tuple(suite['finalists']['seeds'])
  return tuple(suite['final_seeds'])


def chosen_point(suite, task, method) -> tuple[int, dict]:
  """(index, overrides) of the point `method` chose on `task`'s
  validation runs (every one of them stored)."""
  tuned = store.stored_cell(suite, task, method)['tune']
  chosen = choose(tuned, task['metric'])
  return chosen, tuned_points(suite, task, method, tuned)[chosen]


def run_finalists(suite, task, *, dry_run=False, classifier_dir=None,
                  only_methods=None):
  """The finalists' test seeds beyond `final_seeds`, once every method
  of the task is tuned (their first seeds are the usual final runs); of
  `only_methods` alone where given (which methods are finalists is still
  decided by all of them)."""
  names = finalists(suite, task)
  if names is None:
    return ([f'{task["name"]}: finalists\' extra seeds (after tuning)']
            if suite.get('finalists') else [])
  todo = []
  calibrations = store.stored_calibrations(suite)
  for method in suite['methods']:
    if (method['name'] not in names
        or not suite_lib.selected(method['name'], only_methods)):
      continue
    chosen, point = chosen_point(suite, task, method)
    for seed in due_seeds(suite, task, method):
      if seed in suite['final_seeds']:
        continue
      _result_or_run(suite, Run(task, method, 'final', chosen, seed, point),
                     calibrations[f'{task["name"]}/{method["name"]}'],
                     point, dry_run, classifier_dir, todo)
  return todo


def axis_methods(suite, task) -> list[dict] | None:
  """The methods the budget axis trains on `task`: the finalists where
  the suite has them (None until every method is tuned), every method
  that applies otherwise."""
  names = finalists(suite, task) if suite.get('finalists') else {
      m['name'] for m in suite['methods'] if applies(task, m)}
  if names is None:
    return None
  return [m for m in suite['methods'] if m['name'] in names]


def run_budget_axis(suite, task, *, dry_run=False, classifier_dir=None,
                    only_methods=None):
  """The task's further budgets (`suite.budget_tasks`): each axis method
  (of `only_methods` alone where given) at the point it chose on the
  task's own budget, trained with the final seeds for the steps each
  budget buys under the cell's calibration."""
  derived = suite_lib.budget_tasks(task)
  if not derived:
    return []
  chosen_methods = axis_methods(suite, task)
  if chosen_methods is None:
    return [f'{task["name"]}: the budget axis (after tuning)']
  todo, calibrations = [], store.stored_calibrations(suite)
  for method in chosen_methods:
    if not suite_lib.selected(method['name'], only_methods):
      continue
    chosen, point = chosen_point(suite, task, method)
    for other in derived:
      for seed in suite['final_seeds']:
        _result_or_run(suite, Run(other, method, 'final', chosen, seed,
                                  point),
                       calibrations[f'{task["name"]}/{method["name"]}'],
                       point, dry_run, classifier_dir, todo)
  return todo


def run_budget(run: Run, calibration) -> Budget:
  """The run's budget in steps, from its task's seconds and the cell's
  calibration."""
  config = point_config(run.task, run.method, run.overrides)
  return budget_lib.split_budget(run.task['budget_seconds'], calibration,
                                 config, config.train.steps_per_call)


def stale_changes(suite, run: Run, stored: dict, calibration) -> list[str]:
  """What no longer matches between a stored result and the suite's entry
  for it (`provenance`); [] when it is current. A stored `does_not_fit`
  is current while its budget still does not fit, for the same reason."""
  try:
    budget = run_budget(run, calibration)
  except budget_lib.DoesNotFit as e:
    return ([] if stored['status'] == DOES_NOT_FIT
            and stored.get('error') == str(e) else ['budget'])
  if stored['status'] == DOES_NOT_FIT:
    return ['budget']
  config = run_config(suite, run, budget)
  expected = provenance.of_run(run.task, config, budget)
  return provenance.differences(stored, expected, run, budget, config)


def _result_or_run(suite, run, calibration, point, dry_run, classifier_dir,
                   todo):
  """The stored result of `run` if it is there, whole and current; else
  trains (or re-derives from its finished workdir) and stores it."""
  stored = store.read_checked(run.result_path(suite), store.RESULT_SCHEMA,
                              'result')
  name = f'{run.task["name"]}/{run.method["name"]}/{run.name}'
  if stored is not None:
    changed = stale_changes(suite, run, stored, calibration)
    if not changed or suite.get('reuse_stale'):
      return stored
    if dry_run:
      todo.append(f'{name}: stale ({", ".join(changed)} changed), to train '
                  'again')
      return None
    provenance.set_aside(suite, run, changed)
  try:
    budget = run_budget(run, calibration)
  except budget_lib.DoesNotFit as e:
    return _does_not_fit(suite, run, name, str(e), dry_run, todo)
  todo.append(f'{name}: {budget.describe()}')
  if dry_run:
    return None
  preemption.stop_if_requested(name)
  return execute(suite, run, budget, classifier_dir)


DOES_NOT_FIT = 'does_not_fit'


def _does_not_fit(suite, run, name, reason, dry_run, todo):
  """A run whose precomputations alone exceed its budget produces no
  generator: it is stored as a failure with the reason (`status`
  'does_not_fit', nothing trained, nothing charged), so it ranks after
  every method that trained, as a diverged run does; a dry run names it."""
  todo.append(f'{name}: does not fit its budget ({reason}); stored as '
              'failed, nothing trained')
  if dry_run:
    return None
  result = {**result_head(run), 'steps': 0, 'prerequisites': {},
            'setups': {},
            'charged_seconds': 0.0, 'wall_seconds': 0.0, 'curve': [],
            'final': {}, 'status': DOES_NOT_FIT, 'error': reason}
  print(f'{name}: does not fit its budget ({reason})', flush=True)
  store.write_json(run.result_path(suite), result)
  return result


# ------------------------------------------------------- task-level pieces


def test_config(suite, task):
  """The config that defines a task's test evaluation (first method's
  first point: the data, `eval` and `data` sections are the task's)."""
  config = point_config(task, suite['methods'][0],
                        search_points(suite['methods'][0])[0])
  config.eval.update(seed=task['eval_seed'], split='test',
                     floor_draws=suite.get('floor_draws', 10), plot=False)
  return config


def task_classifier(suite, task):
  """Labelled image tasks share one evaluation classifier, trained once
  into the task's work folder (None for other tasks)."""
  config = test_config(suite, task)
  dataset = data_lib.for_run(config)
  if dataset.image_shape is None or dataset.num_classes < 2:
    return None
  folder = os.path.join(work_root(suite), task['name'])
  runner.make_scorer(config, folder)  # trains folder/classifier once
  return os.path.abspath(os.path.join(folder, workdir_lib.CLASSIFIER_DIR))


def data_row(suite, task, classifier_dir=None) -> dict:
  """`data_draws` independent draws of the data (fresh samples, or
  training rows for finite data) scored by the runner's `Scorer`, exactly
  as a method's samples are: where a perfect sampler lands. Stored."""
  path = store.data_row_path(suite, task)
  stored = store.read_checked(path, store.DATA_ROW_SCHEMA, 'data row')
  if stored is not None:
    changed = provenance.data_row_differences(suite, task, stored)
    if not changed or suite.get('reuse_stale'):
      return stored
    provenance.set_aside_file(path, changed)
  config = test_config(suite, task)
  if classifier_dir is not None:
    config.eval.classifier = classifier_dir
  scorer = runner.make_scorer(config, os.path.join(work_root(suite),
                                                   task['name']))
  dataset = data_lib.for_run(config)
  draws = data_lib.independent_draws(dataset, suite.get('data_draws', 10),
                                     task['eval_seed'], DATA_ROW_SALT)
  result = {'task': task['name'],
            'protocol': provenance.data_row_protocol(suite, task),
            'draws': [store.kept(scorer(draw)) for draw in draws]}
  store.write_json(path, result)
  return result


def cross_task_scores(suite, method) -> list[dict] | None:
  """Each search point of `method` across the suite: the geometric mean
  over tasks of its validation headline metric (a ranking that does not
  depend on each task's units, so ED ratios and feature distances mix);
  a point that failed anywhere scores inf. None until every task the
  method applies to has all its tuning results."""
  points = search_points(method)
  logs = [[] for _ in points]
  for task in suite['tasks']:
    if not applies(task, method):
      continue
    tuned = [r for r in store.stored_cell(suite, task, method)['tune']
             if r['point'] < len(points)]  # the declared points only
    if len(tuned) < len(points) * len(suite_lib.tuning_seeds(suite)):
      return None
    for point, value in point_scores(tuned, task['metric']).items():
      ok = math.isfinite(value) and value > 0
      logs[point].append(math.log(value) if ok else math.inf)
  return [{'point': i, 'overrides': points[i], 'tasks': len(v),
           'geomean': math.exp(sum(v) / len(v)) if v else math.nan}
          for i, v in enumerate(logs)]


def cross_task_point(suite, method) -> int | None:
  """The point with the lowest cross-task score (ties: the first)."""
  scores = cross_task_scores(suite, method)
  if scores is None:
    return None
  return min(scores, key=lambda r: (r['geomean'], r['point']))['point']


def run_defaults(suite, *, dry_run=False, only_tasks=None):
  """Defaults that generalise: the suite's `default_method` at its one
  cross-task point, with the final seeds, on every task where the
  per-task choice was another point (where it was the same, the final
  runs are these runs). Returns the runs still to do."""
  name = suite.get('default_method')
  if not name:
    return []
  method = next(m for m in suite['methods'] if m['name'] == name)
  point = cross_task_point(suite, method)
  if point is None:
    return [f'{name}: cross-task default (after every task is tuned)']
  calibrations = store.stored_calibrations(suite)
  todo = []
  for task in suite['tasks']:
    if not applies(task, method) or (only_tasks
                                     and task['name'] not in only_tasks):
      continue
    if choose(store.stored_cell(suite, task, method)['tune'],
              task['metric']) == point:
      continue
    classifier_dir = None if dry_run else task_classifier(suite, task)
    calibration = calibrations[f'{task["name"]}/{name}']
    for seed in suite['final_seeds']:
      _result_or_run(suite, Run(task, method, 'default', point, seed),
                     calibration, search_points(method)[point], dry_run,
                     classifier_dir, todo)
  return todo


def missing_entries(suite, only_tasks=None, only_methods=None) -> list[str]:
  """What the stored results still lack for the suite (a dry run, plus
  the data rows not stored): `--report_only` names these and trains
  nothing."""
  rows = [f'{t["name"]}: data row' for t in suite['tasks']
          if (not only_tasks or t['name'] in only_tasks)
          and not os.path.exists(store.data_row_path(suite, t))]
  return rows + run_suite(suite, dry_run=True, only_tasks=only_tasks,
                          only_methods=only_methods)


def run_suite(suite, *, dry_run=False, only_tasks=None, only_methods=None):
  """Every cell of the suite (resumable); returns the runs still to do on
  a dry run, [] otherwise. A SIGTERM or SIGINT stops it within the run it
  lands in (`runner`), or before the next run or calibration when it lands
  between steps' polls (`preemption.stop_if_requested`)."""
  with preemption.handle_signals():  # the outermost: a signal outlives a run
    return _run_suite(suite, dry_run, only_tasks, only_methods)


def _run_suite(suite, dry_run, only_tasks, only_methods):
  todo = []
  for task in suite['tasks']:
    if only_tasks and task['name'] not in only_tasks:
      continue
    classifier_dir = None
    if not dry_run:
      start = time.perf_counter()
      classifier_dir = task_classifier(suite, task)
      data_row(suite, task, classifier_dir)
      store.add_wall_time(suite, time.perf_counter() - start)
    for t, method in plan(suite, [task['name']], only_methods):
      todo += run_cell(suite, t, method, dry_run=dry_run,
                       classifier_dir=classifier_dir)
    todo += run_finalists(suite, task, dry_run=dry_run,
                          classifier_dir=classifier_dir,
                          only_methods=only_methods)
    todo += run_budget_axis(suite, task, dry_run=dry_run,
                            classifier_dir=classifier_dir,
                            only_methods=only_methods)
  if suite_lib.selected(suite.get('default_method'), only_methods):
    todo += run_defaults(suite, dry_run=dry_run, only_tasks=only_tasks)
  return todo
