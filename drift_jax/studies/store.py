"""The result store of a study: small JSON files meant to be committed.

RESULTS/calibration.json   seconds per step of every (task, method) cell
                           and the machine they were measured on;
RESULTS/wall_time.json     the harness's own wall time besides its runs;
RESULTS/TASK/data_row.json the data row's draws, scored like samples;
RESULTS/TASK/METHOD/RUN.json one run: status, steps, the compute charged,
                           its final metrics and its quality curve.
Every write is atomic (`workdir.write_json`), so a kill loses at most the
file being written, never one already there.
"""

from __future__ import annotations

import json
import os

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
  """The whole calibration file ({} before the first calibration)."""
  return read_json(calibration_path(suite)) or {}


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
  return read_json(os.path.join(suite_lib.results_dir(suite),
                                WALL_TIME_FILE)) or {}


def add_wall_time(suite, seconds):
  """Wall time the harness spent besides its runs (calibration, the
  evaluation classifier, data rows; each run stores its own), added after
  each step so that an interrupted invocation loses at most that step."""
  path = os.path.join(suite_lib.results_dir(suite), WALL_TIME_FILE)
  total = read_json(path) or {'seconds': 0.0}
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
      result = read_json(os.path.join(folder, name))
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
