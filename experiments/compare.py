r"""The fair comparison harness: a suite of tasks x methods at equal compute
and equal tuning effort, several seeds, intervals (docs/leaderboard.md).

  python -m experiments.compare --suite suites/core.py [--dry_run]
  python -m experiments.compare --suite suites/core.py --report_only

A suite file (`suites/core.py`) declares tasks (a config, a budget in
seconds of the calibration machine, the fixed evaluation seed, the metric
hyperparameters are chosen on) and methods (overrides and a search space of
exactly `search_points` points, the same number for every method). For
each task and method the harness

1. calibrates seconds per training step once (`runner.seconds_per_step`,
   stored in RESULTS/calibration.json with the machine it ran on) and
   converts the budget into steps, so that every later run is deterministic
   in its length; a trained DMD teacher is calibrated as its own diffusion
   run and its steps are paid from DMD's budget (`budget.teacher_share`);
2. trains every search point once (seed `tuning_seed`), scored on the
   *validation* split (`eval.split`), and chooses the best by the task's
   metric (a failed point never wins);
3. trains the chosen point with `final_seeds` new seeds, scored on the
   test split;
4. scores a *data row*: `data_draws` independent draws of the data scored
   exactly like samples, where a perfect sampler lands.

Every run of a task uses the same held-out and floor sets (`eval.seed`),
floors average `floor_draws` reference draws, and a run's result (status,
steps, charged seconds, final metrics and its quality-vs-seconds curve) is
written to RESULTS/TASK/METHOD/*.json, small files meant to be committed:
a result already there is never trained again, an interrupted run resumes
from its checkpoints under --workdir, and `--report_only` regenerates the
leaderboard from the stored files alone (`experiments.compare_report`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import math
import os
import platform
import time

from absl import app
from absl import flags

from drift_jax import config_lib
from drift_jax import data as data_lib
from drift_jax import methods
from drift_jax import reporting
from drift_jax import runner
from drift_jax import workdir as workdir_lib
from experiments import cli

FLAGS = flags.FLAGS

TEACHER_SHARE = 'budget.teacher_share'  # a search key of the harness
SUITE_KEYS = {'name', 'tasks', 'methods', 'search_points', 'final_seeds',
              'tuning_seed', 'floor_draws', 'data_draws', 'evals_per_run',
              'calibration_seconds', 'results', 'workdir', 'report',
              'figures', 'title', 'notes', 'default_method'}
TASK_KEYS = {'name', 'config', 'overrides', 'budget_seconds', 'eval_seed',
             'metric', 'metrics', 'needs'}
METHOD_KEYS = {'name', 'overrides', 'search', 'needs', 'label',
               'upper_bound', 'reference'}
DATA_ROW_SALT = 0xDA7A  # keys of the data row's draws (floors: FLOOR_SALT)
CALIBRATION_FILE = 'calibration.json'
DATA_ROW_FILE = 'data_row.json'
# Metrics a result keeps (those the run logged); ratios are added from them.
KEPT_METRICS = ('eval/energy_distance', 'eval/energy_distance_floor',
                'eval/mmd2', 'eval/mmd2_floor', 'eval/modes_covered',
                'eval/mode_mass_error', 'eval/high_quality_fraction',
                'eval/feature_fd', 'eval/feature_fd_floor', 'eval/precision',
                'eval/recall')


def _define_flags():
  """Defined only when run as a script (importing adds no flags)."""
  flags.DEFINE_string('suite', 'suites/core.py', 'Suite file (.py).')
  flags.DEFINE_bool('dry_run', False, 'Print the plan (runs to do, steps, '
                    'budget), train nothing.')
  flags.DEFINE_bool('report_only', False, 'Regenerate the leaderboard from '
                    'the stored results; train nothing.')
  flags.DEFINE_bool('calibrate_only', False, 'Calibrate every cell and '
                    'print the steps each budget buys; train nothing.')
  flags.DEFINE_string('tasks', None, 'Comma-separated task names (default: '
                      'all of the suite).')
  flags.DEFINE_string('methods', None, 'Comma-separated method names '
                      '(default: all of the suite).')


# ------------------------------------------------------------------ suites


def load_suite(path: str) -> dict:
  """A suite file's `get_suite()`, checked (ValueError naming the key)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Suite file {path!r} does not exist.')
  spec = importlib.util.spec_from_file_location('_suite', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return check_suite(module.get_suite())


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
  if len(suite['final_seeds']) < 1 or suite.get('tuning_seed', 0) in suite[
      'final_seeds']:
    raise ValueError('`final_seeds` must be non-empty and must not contain '
                     'the tuning seed (the chosen point is retrained with '
                     'new seeds).')
  for task in suite['tasks']:
    if not task['budget_seconds'] > 0:
      raise ValueError(f'Task {task["name"]!r}: `budget_seconds` must be '
                       f'> 0, got {task["budget_seconds"]}.')
  return suite


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


def results_dir(suite):
  return suite.get('results', os.path.join('results', suite['name']))


def work_root(suite):
  return suite.get('workdir', os.path.join('runs', 'compare', suite['name']))


# ------------------------------------------------------------ budget, plan


def steps_for_budget(seconds: float, seconds_per_step: float,
                     multiple: int = 1) -> int:
  """The most steps (a multiple of `multiple`, at least one multiple) whose
  calibrated cost fits in `seconds`."""
  if not (seconds > 0 and seconds_per_step > 0):
    raise ValueError(f'Need seconds > 0 and seconds_per_step > 0, got '
                     f'{seconds} and {seconds_per_step}.')
  return max(multiple, int(seconds / seconds_per_step) // multiple * multiple)


@dataclasses.dataclass(frozen=True)
class Budget:
  """A run's length from its task's budget and the calibration."""
  steps: int
  teacher_steps: int
  charged_seconds: float  # steps x s/step + teacher_steps x teacher s/step
  seconds_per_step: float
  teacher_seconds_per_step: float


def split_budget(seconds, calibration, teacher_share=0.0,
                 multiple=1) -> Budget:
  """Converts `seconds` into steps; a trained teacher gets `teacher_share`
  of them (its own calibrated step cost) and the student the rest."""
  per_step = calibration['seconds_per_step']
  teacher_per_step = calibration.get('teacher_seconds_per_step', 0.0)
  if teacher_per_step and not 0 < teacher_share < 1:
    raise ValueError(f'A trained teacher needs `{TEACHER_SHARE}` in (0, 1), '
                     f'got {teacher_share}.')
  teacher_steps = (steps_for_budget(teacher_share * seconds,
                                    teacher_per_step)
                   if teacher_per_step else 0)
  steps = steps_for_budget((1 - teacher_share) * seconds if teacher_per_step
                           else seconds, per_step, multiple)
  return Budget(steps, teacher_steps,
                steps * per_step + teacher_steps * teacher_per_step,
                per_step, teacher_per_step)


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of the plan."""
  task: dict
  method: dict
  phase: str  # 'tune', 'final' or 'default' (the cross-task config)
  point: int  # index into search_points(method)
  seed: int

  @property
  def name(self):
    return (f'tune_p{self.point}' if self.phase == 'tune'
            else f'{self.phase}_seed{self.seed}')

  def result_path(self, suite):
    return os.path.join(results_dir(suite), self.task['name'],
                        self.method['name'], f'{self.name}.json')

  def workdir(self, suite):
    return os.path.join(work_root(suite), self.task['name'],
                        self.method['name'], self.name)


def base_config(task, method, point_overrides):
  """The task's config with the method's and the point's overrides (the
  harness's own keys, e.g. `budget.teacher_share`, left out)."""
  config = config_lib.load_config_file(task['config'])
  overrides = {**task.get('overrides', {}), **method.get('overrides', {}),
               **point_overrides}
  for key, value in overrides.items():
    if not key.startswith('budget.'):
      config_lib.set_by_path(config, key, value)
  return methods.finalize(config, overridden=tuple(overrides))


def uses_trained_teacher(config) -> bool:
  return (config.method == 'dmd' and config.dmd.denoisers == 'network'
          and config.dmd.teacher == workdir_lib.TRAIN_HERE)


def run_config(suite, run: Run, budget: Budget, classifier_dir=None):
  """The config a run trains with: its length from the budget, evaluated
  `evals_per_run` times on the fixed sets of its split."""
  point = search_points(run.method)[run.point]
  config = base_config(run.task, run.method, point)
  k = config.train.steps_per_call
  every = max(k, budget.steps // suite.get('evals_per_run', 8) // k * k)
  config.seed = run.seed
  config.train.update(steps=budget.steps, eval_every=every, log_every=every,
                      checkpoint_every=every, progress=False)
  config.eval.update(seed=run.task['eval_seed'], plot=False,
                     split='validation' if run.phase == 'tune' else 'test',
                     floor_draws=suite.get('floor_draws', 10))
  if classifier_dir is not None:
    config.eval.classifier = classifier_dir
  if budget.teacher_steps:
    config.dmd.teacher_steps = budget.teacher_steps
  return config


def plan(suite, only_tasks=None, only_methods=None):
  """[(task, method)] in the order they run: task by task."""
  return [(t, m) for t in suite['tasks'] for m in suite['methods']
          if applies(t, m)
          and (not only_tasks or t['name'] in only_tasks)
          and (not only_methods or m['name'] in only_methods)]


# ------------------------------------------------------------- calibration


def machine() -> dict:
  """What the calibration ran on (budgets are seconds of this machine)."""
  model = platform.processor() or platform.machine()
  if os.path.exists('/proc/cpuinfo'):
    with open('/proc/cpuinfo') as f:
      names = [line.split(':', 1)[1].strip() for line in f
               if line.startswith('model name')]
    model = names[0] if names else model
  return {'processor': model,
          'cpu_count': os.cpu_count(), 'python': platform.python_version(),
          'jax': __import__('jax').__version__,
          'date': time.strftime('%Y-%m-%d')}


def stored_calibrations(suite) -> dict:
  """{'TASK/METHOD': {'seconds_per_step': ..}} measured so far."""
  return (_read_json(os.path.join(results_dir(suite), CALIBRATION_FILE))
          or {}).get('runs', {})


def calibrate(suite, task, method) -> dict:
  """Seconds per step of the method's first search point on the task (and
  of its trained teacher), measured once and stored. The search axes must
  not change a step's cost (learning rates, temperatures, shares): the
  first point's cost stands for all of them."""
  path = os.path.join(results_dir(suite), CALIBRATION_FILE)
  table = _read_json(path) or {'machine': machine(), 'runs': {}}
  key = f'{task["name"]}/{method["name"]}'
  if key in table['runs']:
    return table['runs'][key]
  point = search_points(method)[0]
  config = base_config(task, method, point)
  config.eval.seed = task['eval_seed']
  config.train.progress = False
  work = os.path.join(work_root(suite), 'calibration', task['name'],
                      method['name'])
  entry = {}
  start = time.perf_counter()
  seconds = suite.get('calibration_seconds', 2.0)
  if uses_trained_teacher(config):
    from drift_jax.methods import dmd
    config.dmd.teacher_steps = 2  # a teacher's quality costs nothing
    entry['teacher_seconds_per_step'] = runner.seconds_per_step(
        dmd.teacher_config(config), os.path.join(work, 'teacher_timing'),
        min_seconds=seconds)
  entry['seconds_per_step'] = runner.seconds_per_step(config, work,
                                                      min_seconds=seconds)
  print(f'calibrated {key}: {entry}', flush=True)
  table = _read_json(path) or {'machine': machine(), 'runs': {}}
  table['runs'][key] = entry
  _write_json(path, table)
  _add_wall_time(suite, time.perf_counter() - start)
  return entry


def calibration_table(suite, only_tasks=None, only_methods=None) -> str:
  """Calibrates every cell and tabulates the steps its budget buys and
  the suite's total charged seconds (what training alone will cost)."""
  lines, total = ['task | method | s/step | steps (first point)'], 0.0
  for task, method in plan(suite, only_tasks, only_methods):
    entry = calibrate(suite, task, method)
    point = search_points(method)[0]
    budget = split_budget(task['budget_seconds'], entry,
                          point.get(TEACHER_SHARE, 0.0))
    lines.append(f'{task["name"]} | {method["name"]} | '
                 f'{entry["seconds_per_step"]:.4g} | {budget.steps}'
                 + (f' + {budget.teacher_steps} teacher'
                    if budget.teacher_steps else ''))
    total += budget.charged_seconds * (suite['search_points']
                                       + len(suite['final_seeds']))
  lines.append(f'total charged: {total / 3600:.2f} h')
  return '\n'.join(lines)


# -------------------------------------------------------------------- runs


def execute(suite, run: Run, budget: Budget, classifier_dir=None) -> dict:
  """Trains (or resumes) one run and stores its result; a run that
  diverges or produces non-finite samples is stored as failed."""
  config = run_config(suite, run, budget, classifier_dir)
  workdir = run.workdir(suite)
  result = {'task': run.task['name'], 'method': run.method['name'],
            'phase': run.phase, 'point': run.point, 'seed': run.seed,
            'overrides': _jsonable(search_points(run.method)[run.point]),
            'split': config.eval.split, 'steps': budget.steps,
            'teacher_steps': budget.teacher_steps,
            'charged_seconds': budget.charged_seconds,
            'seconds_per_step': budget.seconds_per_step,
            'teacher_seconds_per_step': budget.teacher_seconds_per_step}
  print(f'running {run.task["name"]}/{run.method["name"]}/{run.name}: '
        f'{budget.steps} steps'
        + (f' after {budget.teacher_steps} teacher steps'
           if budget.teacher_steps else '')
        + f' ({budget.charged_seconds:.3g} s charged)', flush=True)
  start = time.perf_counter()
  try:
    summary = runner.train_and_evaluate(config, workdir)
    error = None
  except FloatingPointError as e:  # diverged: a failure, never dropped
    summary, error = {}, str(e)
  result['wall_seconds'] = time.perf_counter() - start
  result['curve'] = curve(workdir, budget)
  final = {k: summary[k] for k in KEPT_METRICS if k in summary}
  result['final'] = with_ratios(final)
  value = result['final'].get(run.task['metric'], math.nan)
  if error is None and not math.isfinite(value):
    error = f'{run.task["metric"]} is {value} at the end of the run'
  result['status'] = 'failed' if error else 'ok'
  result['error'] = error
  _write_json(run.result_path(suite), result)
  return result


def with_ratios(metrics: dict) -> dict:
  """Adds energy-distance and MMD^2 ratios to their (averaged) floors."""
  out = dict(metrics)
  for name in ('energy_distance', 'mmd2', 'feature_fd'):
    value, floor = out.get(f'eval/{name}'), out.get(f'eval/{name}_floor')
    if value is not None and floor:
      out[f'eval/{name}_ratio'] = value / floor
  return out


def curve(workdir, budget: Budget) -> list[dict]:
  """Quality against charged seconds (a teacher's included) at every
  evaluation the run logged."""
  points = []
  for record in reporting.read_metrics(workdir):
    if 'eval/energy_distance' not in record:
      continue
    metrics = with_ratios({k: record[k] for k in KEPT_METRICS
                           if k in record})
    points.append({'step': record['step'],
                   'charged_seconds': (budget.teacher_steps
                                       * budget.teacher_seconds_per_step
                                       + record['step']
                                       * budget.seconds_per_step),
                   'wall_seconds': record.get('budget/total_seconds'),
                   **metrics})
  return points


def choose(results: list[dict], metric: str) -> int:
  """Index of the search point with the lowest validation `metric` (a
  failed or non-finite point never wins; ties go to the first point)."""
  if not results:
    raise ValueError('No tuning results to choose from.')
  for r in results:
    if r['split'] != 'validation':
      raise ValueError(f'Tuning result of point {r["point"]} was scored on '
                       f'{r["split"]!r}; points are chosen on validation.')
  def score(r):
    value = r['final'].get(metric, math.nan)
    return value if r['status'] == 'ok' and math.isfinite(value) else math.inf
  best = min(results, key=lambda r: (score(r), r['point']))
  return best['point']


def run_cell(suite, task, method, *, dry_run=False, classifier_dir=None):
  """Tunes one method on one task, then trains the chosen point with the
  final seeds. Returns the runs still to do (dry run) or done."""
  calibration = stored_calibrations(suite).get(
      f'{task["name"]}/{method["name"]}')
  if calibration is None and dry_run:
    return [f'{task["name"]}/{method["name"]}: calibrate, then '
            f'{len(search_points(method))} tuning and '
            f'{len(suite["final_seeds"])} final runs']
  calibration = calibration or calibrate(suite, task, method)
  points = search_points(method)
  todo = []
  tuned = []
  for i, point in enumerate(points):
    run = Run(task, method, 'tune', i, suite.get('tuning_seed', 0))
    tuned.append(_result_or_run(suite, run, calibration, point, dry_run,
                                classifier_dir, todo))
  if any(r is None for r in tuned):
    return todo + [f'{task["name"]}/{method["name"]}/final (after tuning)']
  chosen = choose(tuned, task['metric'])
  for seed in suite['final_seeds']:
    run = Run(task, method, 'final', chosen, seed)
    _result_or_run(suite, run, calibration, points[chosen], dry_run,
                   classifier_dir, todo)
  return todo


def _result_or_run(suite, run, calibration, point, dry_run, classifier_dir,
                   todo):
  stored = _read_json(run.result_path(suite))
  if stored is not None:
    return stored
  config = base_config(run.task, run.method, point)
  budget = split_budget(run.task['budget_seconds'], calibration,
                        point.get(TEACHER_SHARE, 0.0),
                        config.train.steps_per_call)
  todo.append(f'{run.task["name"]}/{run.method["name"]}/{run.name}: '
              f'{budget.steps} steps'
              + (f' + {budget.teacher_steps} teacher steps'
                 if budget.teacher_steps else ''))
  if dry_run:
    return None
  return execute(suite, run, budget, classifier_dir)


# ------------------------------------------------------- task-level pieces


def test_config(suite, task):
  """The config that defines a task's test evaluation (first method's
  first point: the data, `eval` and `data` sections are the task's)."""
  config = base_config(task, suite['methods'][0],
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
  path = os.path.join(results_dir(suite), task['name'], DATA_ROW_FILE)
  stored = _read_json(path)
  if stored is not None:
    return stored
  config = test_config(suite, task)
  if classifier_dir is not None:
    config.eval.classifier = classifier_dir
  scorer = runner.make_scorer(config, os.path.join(work_root(suite),
                                                   task['name']))
  dataset = data_lib.for_run(config)
  draws = data_lib.independent_draws(dataset, suite.get('data_draws', 10),
                                     task['eval_seed'], DATA_ROW_SALT)
  rows = []
  for draw in draws:
    scored = scorer(draw)
    rows.append(with_ratios({k: scored[k] for k in KEPT_METRICS
                             if k in scored}))
  result = {'task': task['name'], 'draws': rows}
  _write_json(path, result)
  return result


def stored_cell(suite, task, method) -> dict:
  """{'tune': [...], 'final': [...], 'default': [...]} of the stored
  results of one task and method (sorted by point, then seed)."""
  folder = os.path.join(results_dir(suite), task['name'], method['name'])
  cell = {'tune': [], 'final': [], 'default': []}
  if os.path.isdir(folder):
    for name in sorted(os.listdir(folder)):
      result = _read_json(os.path.join(folder, name))
      cell[result['phase']].append(result)
  cell['tune'].sort(key=lambda r: r['point'])
  for phase in ('final', 'default'):
    cell[phase].sort(key=lambda r: r['seed'])
  return cell


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
    tuned = stored_cell(suite, task, method)['tune']
    if len(tuned) < len(points):
      return None
    for r in tuned:
      value = r['final'].get(task['metric'], math.nan)
      ok = r['status'] == 'ok' and math.isfinite(value) and value > 0
      logs[r['point']].append(math.log(value) if ok else math.inf)
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
  """Deliverable 'defaults that generalise': the suite's `default_method`
  at its one cross-task point, with the final seeds, on every task where
  the per-task choice was another point (where it was the same, the final
  runs are these runs). Returns the runs still to do."""
  name = suite.get('default_method')
  if not name:
    return []
  method = next(m for m in suite['methods'] if m['name'] == name)
  point = cross_task_point(suite, method)
  if point is None:
    return [f'{name}: cross-task default (after every task is tuned)']
  calibrations = stored_calibrations(suite)
  todo = []
  for task in suite['tasks']:
    if not applies(task, method) or (only_tasks
                                     and task['name'] not in only_tasks):
      continue
    if choose(stored_cell(suite, task, method)['tune'],
              task['metric']) == point:
      continue
    classifier_dir = None if dry_run else task_classifier(suite, task)
    calibration = calibrations[f'{task["name"]}/{name}']
    for seed in suite['final_seeds']:
      _result_or_run(suite, Run(task, method, 'default', point, seed),
                     calibration, search_points(method)[point], dry_run,
                     classifier_dir, todo)
  return todo


def run_suite(suite, *, dry_run=False, only_tasks=None, only_methods=None):
  """Every cell of the suite (resumable); returns the runs still to do on
  a dry run, [] otherwise."""
  todo = []
  for task in suite['tasks']:
    if only_tasks and task['name'] not in only_tasks:
      continue
    classifier_dir = None
    if not dry_run:
      start = time.perf_counter()
      classifier_dir = task_classifier(suite, task)
      data_row(suite, task, classifier_dir)
      _add_wall_time(suite, time.perf_counter() - start)
    for t, method in plan(suite, [task['name']], only_methods):
      todo += run_cell(suite, t, method, dry_run=dry_run,
                       classifier_dir=classifier_dir)
  if not only_methods or suite.get('default_method') in only_methods:
    todo += run_defaults(suite, dry_run=dry_run, only_tasks=only_tasks)
  return todo


def _add_wall_time(suite, seconds):
  """Wall time the harness spent besides its runs (calibration, the
  evaluation classifier, data rows; each run stores its own), added after
  each step so that an interrupted invocation loses at most that step."""
  path = os.path.join(results_dir(suite), 'wall_time.json')
  total = (_read_json(path) or {'seconds': 0.0})
  total['seconds'] = total['seconds'] + seconds
  _write_json(path, total)


def _write_json(path, obj):
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  workdir_lib.write_json(path, obj)  # atomic


def _read_json(path):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _jsonable(value):
  return json.loads(json.dumps(value))


# -------------------------------------------------------------------- main


def main(argv):
  cli.run_main(_main, argv)


def _main(argv):
  cli.check_no_arguments(argv)
  from experiments import compare_report
  suite = load_suite(FLAGS.suite)
  only_tasks = FLAGS.tasks.split(',') if FLAGS.tasks else None
  only_methods = FLAGS.methods.split(',') if FLAGS.methods else None
  for names, kind in ((only_tasks, 'tasks'), (only_methods, 'methods')):
    known = {e['name'] for e in suite[kind]}
    if names and set(names) - known:
      raise ValueError(f'--{kind}: unknown {sorted(set(names) - known)}; '
                       f'the suite has {sorted(known)}.')
  if FLAGS.calibrate_only:
    print(calibration_table(suite, only_tasks, only_methods))
    return
  if not FLAGS.report_only:
    todo = run_suite(suite, dry_run=FLAGS.dry_run, only_tasks=only_tasks,
                     only_methods=only_methods)
    if FLAGS.dry_run:
      print('\n'.join(todo) or 'nothing to do')
      print(f'{len(todo)} entries to do')
      return
  path = compare_report.write(suite)
  print(f'leaderboard: {path}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
