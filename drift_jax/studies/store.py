"""The result store of a study: small JSON files meant to be committed.

RESULTS/calibration.json   seconds per step of every (task, method) cell
                           and the machine they were measured on;
RESULTS/wall_time.json     the harness's own wall time besides its runs;
RESULTS/TASK/data_row.json the data row's draws, scored like samples;
RESULTS/TASK/METHOD/RUN.json one run: status, steps, the compute charged,
                           its final metrics and its quality curve.
Every write is atomic (`workdir.write_json`), so a kill loses at most the
file being written, never one already there. Every read is checked against
the file's schema (`read_checked`): a damaged file (truncated, empty,
`null`, `{}`, binary, missing keys) is named in one warning line, moved
aside as `<name>.bad` and derived again by its caller (a finished run's
result from its workdir, a calibration from the results, a data row by
scoring it again), never a traceback that blocks the suite.
"""

from __future__ import annotations

import json
import os
import sys

from drift_jax import evaluators
from drift_jax.studies import suite as suite_lib
from drift_jax.train import workdir as workdir_lib

CALIBRATION_FILE = 'calibration.json'
DATA_ROW_FILE = 'data_row.json'
SAMPLES_DIR = 'samples'  # a task's folder of sample grids (not a method)
WALL_TIME_FILE = 'wall_time.json'


def write_json(path, obj):
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  workdir_lib.write_json(path, obj)  # atomic


def read_json(path):
  """The JSON object at `path`, or None when there is no file."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


# What each kind of file must hold: {key: type(s)}.
# (A result's keys that its readers need; the harness writes more.)
RESULT_SCHEMA = {'phase': str, 'point': int, 'seed': int, 'status': str,
                 'split': str, 'final': dict}
PHASES = ('tune', 'final', 'default')
DATA_ROW_SCHEMA = {'task': str, 'draws': list}
CALIBRATION_SCHEMA = {'runs': dict}
WALL_TIME_SCHEMA = {'seconds': (int, float)}
BAD_SUFFIX = '.bad'


def schema_problem(value, schema) -> str | None:
  """What is wrong with a decoded file against `schema` (None: nothing)."""
  if not isinstance(value, dict):
    return f'holds {type(value).__name__}, not a JSON object'
  missing = [k for k in schema if k not in value]
  if missing:
    return f'lacks {missing}'
  wrong = [k for k, kind in schema.items()
           if not isinstance(value[k], kind) or isinstance(value[k], bool)]
  if wrong:
    return f'has values of the wrong type at {wrong}'
  if 'phase' in schema and value['phase'] not in PHASES:
    return f'has phase {value["phase"]!r}, not one of {PHASES}'
  return None


def read_checked(path, schema, what: str):
  """The JSON object at `path` if it matches `schema`; None when there is
  no file, or when the file is damaged: then it is moved aside as
  `<path>.bad` with one warning line naming it, for the caller to derive
  again."""
  if not os.path.exists(path):
    return None
  try:
    with open(path, 'rb') as f:
      value = json.loads(f.read().decode('utf-8'))
    problem = schema_problem(value, schema)
  except (UnicodeDecodeError, json.JSONDecodeError) as error:
    problem = f'is not JSON ({error})'
  if problem is None:
    return value
  target = path + BAD_SUFFIX
  suffix = 0
  while os.path.exists(target):
    suffix += 1
    target = f'{path}{BAD_SUFFIX}{suffix}'
  os.replace(path, target)
  print(f'warning: {what} {path} {problem}; moved aside as {target} and '
        'derived again.', file=sys.stderr, flush=True)
  return None


def jsonable(value):
  """`value` as JSON reads it back (tuples become lists)."""
  return json.loads(json.dumps(value))


def kept(metrics: dict) -> dict:
  """The metrics a result keeps (`evaluators`: those declared `kept`),
  with their ratios to their floors."""
  return evaluators.with_ratios({k: metrics[k]
                                 for k in evaluators.kept_metrics()
                                 if k in metrics})


def calibration_path(suite) -> str:
  return os.path.join(suite_lib.results_dir(suite), CALIBRATION_FILE)


def calibration_file(suite) -> dict:
  """The whole calibration file ({} before the first calibration). A
  damaged one is moved aside and rebuilt from the stored results, each of
  which records the seconds per step it was budgeted with."""
  path = calibration_path(suite)
  exists = os.path.exists(path)
  table = read_checked(path, CALIBRATION_SCHEMA, 'calibration file')
  if table is None and exists:
    table = calibration_from_results(suite)
    write_json(path, table)
  return table or {}


def calibration_from_results(suite) -> dict:
  """The calibration entries the stored results were budgeted with
  ({'TASK/METHOD': {'seconds_per_step', 'NAME_seconds_per_step'}}); cells
  with no result are calibrated again when reached."""
  runs = {}
  root = suite_lib.results_dir(suite)
  for task in suite['tasks']:
    for method in suite['methods']:
      cell = stored_cell(suite, task, method)
      results = cell['tune'] + cell['final'] + cell['default']
      if results:
        r = results[0]
        runs[f'{task["name"]}/{method["name"]}'] = {
            **{f'{name}_seconds_per_step': p['seconds_per_step']
               for name, p in r.get('prerequisites', {}).items()},
            'seconds_per_step': r['seconds_per_step']}
  return {'machine': {'note': f'rebuilt from the results in {root}'},
          'runs': runs}


def stored_calibrations(suite) -> dict:
  """{'TASK/METHOD': {'seconds_per_step': ..}} measured so far."""
  return calibration_file(suite).get('runs', {})


def data_row_path(suite, task) -> str:
  return os.path.join(suite_lib.results_dir(suite), task['name'],
                      DATA_ROW_FILE)


def samples_path(suite, task, method) -> str:
  """The sample grid of a method's first final run on an image task
  (beside the task's results, committed with them)."""
  return os.path.join(suite_lib.results_dir(suite), task['name'],
                      SAMPLES_DIR, f'{method["name"]}.png')


def wall_time(suite) -> dict:
  """{'seconds': ...} the harness spent besides its runs ({} if none)."""
  return read_checked(os.path.join(suite_lib.results_dir(suite),
                                   WALL_TIME_FILE), WALL_TIME_SCHEMA,
                      'wall-time file') or {}


def add_wall_time(suite, seconds):
  """Wall time the harness spent besides its runs (calibration, the
  evaluation classifier, data rows; each run stores its own), added after
  each step so that an interrupted invocation loses at most that step."""
  path = os.path.join(suite_lib.results_dir(suite), WALL_TIME_FILE)
  total = wall_time(suite) or {'seconds': 0.0}
  total['seconds'] = total['seconds'] + seconds
  write_json(path, total)


def stored_cell(suite, task, method) -> dict:
  """{'tune': [...], 'final': [...], 'default': [...]} of the stored
  results of one task and method (sorted by point, then seed)."""
  folder = os.path.join(suite_lib.results_dir(suite), task['name'],
                        method['name'])
  cell = {'tune': [], 'final': [], 'default': []}
  if os.path.isdir(folder):
    for name in sorted(os.listdir(folder)):
      if workdir_lib.is_temporary(name) or not name.endswith('.json'):
        continue  # a write in progress (or killed), or a stray file
      result = read_checked(os.path.join(folder, name), RESULT_SCHEMA,
                            'result')
      if result is not None:  # a damaged one is derived again when run
        cell[result['phase']].append(result)
  cell['tune'].sort(key=lambda r: (r['point'], r['seed']))
  for phase in ('final', 'default'):
    cell[phase].sort(key=lambda r: r['seed'])
  return cell


def prerequisite_steps(result: dict) -> dict[str, int]:
  """{prerequisite: training steps} a stored result was charged for. Read
  from `prerequisites` ({name: {'steps', 'seconds_per_step'}}), or from
  the flat `teacher_steps` of results stored before costs were declared by
  the prerequisites themselves."""
  if 'prerequisites' in result:
    return {name: entry['steps']
            for name, entry in result['prerequisites'].items()}
  steps = result.get('teacher_steps', 0)
  return {'teacher': steps} if steps else {}
