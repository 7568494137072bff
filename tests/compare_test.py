"""The comparison harness (`drift_jax.studies`) on a tiny suite at
`runlocal` sizes: equal budgets, choice on validation, resumption,
intervals, failures."""

import copy
import json
import math
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from drift_jax import methods
from drift_jax import stats
from drift_jax.data import datasets as data_lib
from drift_jax.studies import budget as budget_lib
from drift_jax.studies import budget_report
from drift_jax.studies import harness
from drift_jax.studies import leaderboard
from drift_jax.studies import provenance
from drift_jax.studies import store
from drift_jax.studies import suite as suite_lib
from drift_jax.studies import verdicts
from drift_jax.train import preemption
from drift_jax.train import runner
from experiments import compare

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_suite(tmp):
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', 'tiny.py'))
  suite.update(results=os.path.join(tmp, 'results'),
               workdir=os.path.join(tmp, 'runs'),
               report=os.path.join(tmp, 'leaderboard.md'))
  return suite


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """The tiny suite run once (about a minute): drifting, DMD with a
  trained teacher, and a method whose learning rate makes it diverge."""
  tmp = str(tmp_path_factory.mktemp('compare'))
  suite = tiny_suite(tmp)
  harness.run_suite(suite)
  return suite, leaderboard.load(suite)


def _dmd_config(share):
  config = suite_lib.point_config(
      {'config': 'configs/gmm.py:runlocal'},
      {'overrides': {'method': 'dmd', 'dmd.teacher': 'train'}},
      {'dmd.teacher_share': share})
  return config


def test_precomputations_are_charged_to_the_run():
  """DMD's regression pairs (`methods.setups`) are paid from the run's
  part of the budget at their calibrated seconds; a calibration from
  before they were timed charges none (the results it made)."""
  config = suite_lib.point_config(
      {'config': 'configs/gmm.py:runlocal'},
      {'overrides': {'method': 'dmd', 'dmd.teacher': 'train',
                     'dmd.regression_weight': 0.25}},
      {'dmd.teacher_share': 0.5})
  calibration = {'seconds_per_step': 0.05, 'teacher_seconds_per_step': 0.01,
                 'regression_setup_seconds': 1.0}
  budget = budget_lib.split_budget(20.0, calibration, config)
  # Teacher 10 s = 1,000 steps; the run (10 - 1) s = 180 steps.
  assert (budget.prerequisites['teacher'].steps, budget.steps,
          dict(budget.setups)) == (1000, 180, {'regression': 1.0})
  assert budget.charged_seconds == pytest.approx(20.0)
  assert budget.describe() == ('180 steps + 1000 teacher steps + '
                               'regression (1 s)')
  with pytest.raises(ValueError, match='leave nothing of the 1.0 s budget'):
    budget_lib.split_budget(1.0, {**calibration,
                                  'regression_setup_seconds': 0.6}, config)
  del calibration['regression_setup_seconds']
  assert budget_lib.split_budget(20.0, calibration, config).steps == 200


def test_budget_becomes_steps_that_fit():
  steps_for_budget = budget_lib.steps_for_budget
  assert steps_for_budget(20.0, 0.054) == 370  # 370 x 0.054 = 19.98
  assert steps_for_budget(20.0, 0.054, multiple=8) == 368
  assert steps_for_budget(0.01, 1.0, multiple=4) == 4  # at least one
  # The teacher's share is the method's own key, declared with its length
  # key by the method's prerequisite: the harness names no method.
  budget = budget_lib.split_budget(
      20.0, {'seconds_per_step': 0.05, 'teacher_seconds_per_step': 0.01},
      _dmd_config(0.75))
  # The teacher's 15 s buy 1,500 steps at 0.01 s; the student's 5 s 100.
  assert (budget.prerequisites['teacher'].steps, budget.steps) == (1500, 100)
  assert budget.prerequisites['teacher'].length_key == 'dmd.teacher_steps'
  assert budget.charged_seconds == pytest.approx(20.0)
  config = _dmd_config(0.75)
  budget_lib.apply_budget(config, budget)
  assert (config.dmd.teacher_steps, config.train.steps) == (1500, 100)
  drifting = suite_lib.point_config(
      {'config': 'configs/gmm.py:runlocal'}, {'overrides': {}}, {})
  plain = budget_lib.split_budget(1.0, {'seconds_per_step': 0.3}, drifting)
  assert (plain.steps, dict(plain.prerequisites)) == (3, {})
  assert plain.charged_seconds == pytest.approx(0.9)
  with pytest.raises(ValueError, match='teacher_seconds_per_step'):
    budget_lib.split_budget(1.0, {'seconds_per_step': 0.1},
                            _dmd_config(0.5))
  with pytest.raises(ValueError, match='dmd.teacher_share'):
    methods.validate(_dmd_config(1.0), 1)


def _result(point, value, split='validation', status='ok'):
  return {'point': point, 'split': split, 'status': status,
          'final': {'eval/energy_distance_ratio': value}}


def test_choice_is_made_on_validation_and_failures_never_win():
  metric = 'eval/energy_distance_ratio'
  assert harness.choose([_result(0, 3.0), _result(1, 2.0),
                         _result(2, 2.5)], metric) == 1
  assert harness.choose([_result(0, 3.0), _result(1, 1.0, status='failed'),
                         _result(2, math.nan)], metric) == 0
  with pytest.raises(ValueError, match='chosen on validation'):
    harness.choose([_result(0, 1.0, split='test')], metric)


def test_suites_declare_equal_search_spaces():
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', 'core.py'))
  assert {len(suite_lib.search_points(m)) for m in suite['methods']} == {
      suite['search_points']}
  bad = copy.deepcopy(suite)
  bad['methods'][0]['search'] = {'optim.lr': (1e-3,)}
  with pytest.raises(ValueError, match='search_points'):
    suite_lib.check_suite(bad)
  bad = copy.deepcopy(suite)
  bad['final_seeds'] = (0, 1, 2)
  with pytest.raises(ValueError, match='tuning seed'):
    suite_lib.check_suite(bad)
  bad = copy.deepcopy(suite)
  bad['tasks'][0]['metric'] = 'eval/mmd2'  # unbiased: may be negative
  with pytest.raises(ValueError, match="'checkerboard'.*may be <= 0"):
    suite_lib.check_suite(bad)
  for task in suite['tasks']:  # every cell makes a valid config
    for method in suite['methods']:
      if suite_lib.applies(task, method):
        for point in suite_lib.search_points(method):
          suite_lib.point_config(task, method, point)


@pytest.mark.parametrize('name', ['images', 'images_gpu'])
def test_image_suites_validate_every_cell(name):
  """The images suites (the GPU one too, on the CPU): every point of
  every cell passes the start-up checks, which `--dry_run` runs; the
  encoders are charged to drifting as the teacher is to DMD."""
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', f'{name}.py'))
  for task, method in suite_lib.plan(suite):
    suite_lib.check_cell(task, method, 8)
  task = suite['tasks'][0]
  for method in suite['methods']:
    config = suite_lib.point_config(task, method,
                                    suite_lib.search_points(method)[0])
    charged = set(budget_lib.charged_prerequisites(config))
    assert charged == ({'encoder'} if 'features.encoder' in method[
        'overrides'] else {'teacher'} if method['name'] == 'dmd_trained'
                       else set()), method['name']
  bad = copy.deepcopy(suite['methods'][1])
  bad['search'] = {'features.encoder_share': (0.5, 1.5)}
  with pytest.raises(ValueError, match=r"drifting_mae point "
                     r"\{'features.encoder_share': 1.5\}: "
                     '`features.encoder_share`'):
    suite_lib.check_cell(task, bad, 8)


def test_tuning_scores_validation_and_final_runs_score_test(finished):
  suite, table = finished
  task = suite['tasks'][0]
  for method in suite['methods']:
    cell = table[(task['name'], method['name'])]
    assert [r['split'] for r in cell['tune']] == ['validation'] * 2
    assert [r['seed'] for r in cell['final']] == list(
        harness.due_seeds(suite, task, method))
    assert {r['split'] for r in cell['final']} == {'test'}
    assert {r['point'] for r in cell['final']} == {
        harness.choose(cell['tune'], task['metric'])}
    # Equal compute: every run's calibrated cost fits in the budget.
    for r in cell['tune'] + cell['final']:
      assert r['charged_seconds'] <= task['budget_seconds'] * (1 + 1e-9)
  # The validation set is not the test set, and every run of the task
  # (any method, any seed) was scored against the same test set.
  runs = os.path.join(suite['workdir'], task['name'], 'drifting')
  configs = [json.load(open(os.path.join(runs, name, runner.CONFIG_FILE)))
             for name in ('tune_p0', 'final_seed1')]
  assert [c['eval']['split'] for c in configs] == ['validation', 'test']
  import ml_collections
  held = [data_lib.for_run(ml_collections.ConfigDict(c)).held_out
          for c in configs]
  assert not np.allclose(held[0], held[1])
  floors = {r['final']['eval/energy_distance_floor']
            for m in ('drifting', 'dmd_trained')
            for r in table[(task['name'], m)]['final']}
  assert len(floors) == 1


def test_finalists_get_their_seeds_fixed_in_advance(finished):
  """tiny: drifting always, plus the one best rival on validation (DMD:
  the diverging method's points failed) get seed 3; the rest keep 2."""
  suite, table = finished
  task = suite['tasks'][0]
  assert harness.finalists(suite, task) == {'drifting', 'dmd_trained'}
  seeds = {m: [r['seed'] for r in table[('ring', m)]['final']]
           for m in ('drifting', 'dmd_trained', 'diverging')}
  assert seeds == {'drifting': [1, 2, 3], 'dmd_trained': [1, 2, 3],
                   'diverging': [1, 2]}
  text = open(leaderboard.write(suite)).read()
  assert '3 for the finalists (drifting, dmd_trained)' in text
  assert 'Finalists: on each task, drifting and the 1 best' in text
  bad = copy.deepcopy(suite)
  bad['finalists']['seeds'] = (2, 3)
  with pytest.raises(ValueError, match='every final seed'):
    suite_lib.check_suite(bad)


def test_methods_flag_restricts_the_finalists_extra_seeds(finished,
                                                          tmp_path):
  """`--methods` (only_methods) trains the extra seeds of the finalists it
  names alone, so two workers can split them; which methods are finalists
  is still decided among all of them."""
  suite = _copy_of(finished, tmp_path)
  task = suite['tasks'][0]
  for name in ('drifting', 'dmd_trained'):
    method = next(m for m in suite['methods'] if m['name'] == name)
    chosen, _ = harness.chosen_point(suite, task, method)
    os.remove(suite_lib.Run(task, method, 'final', chosen, 3)
              .result_path(suite))
  def todo(only_methods):
    return sorted(t.split(':')[0] for t in harness.run_suite(
        suite, dry_run=True, only_methods=only_methods))
  assert todo(['dmd_trained']) == ['ring/dmd_trained/final_seed3']
  assert todo(['diverging']) == []
  assert todo(None) == ['ring/dmd_trained/final_seed3',
                        'ring/drifting/final_seed3']


def test_trained_teacher_is_paid_from_the_budget(finished):
  suite, table = finished
  for r in table[('ring', 'dmd_trained')]['tune']:
    share = r['overrides']['dmd.teacher_share']
    paid = r['prerequisites']['teacher']
    teacher = paid['steps'] * paid['seconds_per_step']
    assert paid['steps'] > 0
    assert teacher <= share * suite['tasks'][0]['budget_seconds'] + 1e-9
    assert r['curve'][0]['charged_seconds'] > teacher  # starts after it


def test_diverging_method_is_reported_failed(finished):
  suite, table = finished
  cell = table[('ring', 'diverging')]
  assert all(r['status'] == 'failed' for r in cell['tune'] + cell['final'])
  text = open(leaderboard.write(suite)).read()
  failed_row = [line for line in text.splitlines()
                if line.startswith('| diverging')]
  assert failed_row and 'failed (2)' in failed_row[0]
  assert '2/2' in failed_row[0]
  summary = verdicts.summary_rows(suite, table)[0]
  assert summary['best'] != 'diverging'
  verdict = {n: v for n, _, v in summary['claims']}['diverging']
  assert verdict == stats.WORSE  # a failed seed loses the test


def test_leaderboard_intervals_are_the_t_intervals(finished):
  suite, table = finished
  text = open(leaderboard.write(suite)).read()
  final = table[('ring', 'drifting')]['final']
  metric = 'eval/energy_distance_ratio'
  expected = stats.mean_interval(
      [r['final']['eval/energy_distance'] / r['final'][
          'eval/energy_distance_floor'] for r in final])
  assert str(leaderboard.interval(final, metric)) == str(expected)
  assert str(expected) in text
  data = table[('ring', None)]['draws']
  assert len(data) == suite['data_draws']
  assert str(stats.mean_interval([d[metric] for d in data])) in text
  assert '(same point)' in text  # one task: its own choice is the default
  assert '![ring' in text and os.path.exists(os.path.join(
      leaderboard.figures_dir(suite), 'ring.png'))


def test_resumed_suite_trains_nothing_twice(finished, monkeypatch):
  suite, table = finished
  calls = []
  real = runner.train_and_evaluate

  def counting(config, workdir):
    calls.append(workdir)
    return real(config, workdir)

  monkeypatch.setattr(runner, 'train_and_evaluate', counting)
  assert harness.run_suite(suite, dry_run=True) == []
  harness.run_suite(suite)
  assert calls == []
  # A run whose result was lost (interrupted before it was stored) runs
  # again from its checkpoints: the runner is called, trains no step, and
  # the stored result is the same.
  lost = os.path.join(suite_lib.results_dir(suite), 'ring', 'drifting',
                      'final_seed2.json')
  before = json.load(open(lost))
  os.remove(lost)
  harness.run_suite(suite)
  assert len(calls) == 1 and calls[0].endswith('final_seed2')
  after = json.load(open(lost))
  assert after['final'] == before['final']
  assert after['curve'] == before['curve']


def _store(suite, task, method, point, value, status='ok'):
  path = suite_lib.Run(task, method, 'tune', point, 0).result_path(suite)
  store.write_json(path, {
      'phase': 'tune', 'point': point, 'seed': 0, 'split': 'validation',
      'status': status, 'final': {task['metric']: value}})


def test_one_default_config_across_tasks(tmp_path):
  """The cross-task point minimises the geometric mean of the tasks'
  validation metrics (units cancel), a failure anywhere disqualifies a
  point, and the default runs are planned only where a task chose
  another point."""
  suite = tiny_suite(str(tmp_path))
  task_a = dict(suite['tasks'][0], name='a')
  task_b = dict(suite['tasks'][0], name='b',
                metric='eval/mmd2_ratio')  # other units
  suite['tasks'] = [task_a, task_b]
  method = suite['methods'][0]
  for point, (a, b) in enumerate([(1.0, 300.0), (2.0, 100.0)]):
    _store(suite, task_a, method, point, a)
    _store(suite, task_b, method, point, b)
  # Geometric means: sqrt(1 x 300) = 17.3 and sqrt(2 x 100) = 14.1.
  scores = harness.cross_task_scores(suite, method)
  assert [round(r['geomean'], 1) for r in scores] == [17.3, 14.1]
  assert harness.cross_task_point(suite, method) == 1
  store.write_json(
      os.path.join(suite_lib.results_dir(suite), store.CALIBRATION_FILE),
      {'runs': {f'{t}/drifting': {'seconds_per_step': 0.01}
                for t in ('a', 'b')}})
  todo = harness.run_defaults(suite, dry_run=True)
  assert [t.split(':')[0] for t in todo] == [
      f'a/drifting/default_seed{s}' for s in suite['final_seeds']]
  _store(suite, task_b, method, 1, 100.0, status='failed')
  assert harness.cross_task_point(suite, method) == 0
  # Until every task is tuned there is no default.
  os.remove(suite_lib.Run(task_a, method, 'tune', 0, 0).result_path(suite))
  assert harness.cross_task_point(suite, method) is None


def test_image_tasks_keep_a_sample_grid_per_method(tmp_path):
  """An image task's run leaves its samples as a grid beside the results
  (`execute` asks for it on the first final seed only), and the
  leaderboard embeds it where it exists."""
  suite = {'name': 'grids', 'final_seeds': (1, 2),
           'results': str(tmp_path / 'results'),
           'report': str(tmp_path / 'docs' / 'board.md'),
           'methods': [{'name': 'drifting', 'label': 'drifting'}]}
  task = {'name': 'digits', 'config': 'configs/digits.py:runlocal'}
  method = suite['methods'][0]
  config = suite_lib.config_with_overrides(task['config'], {})
  dataset = data_lib.for_run(config)
  workdir = tmp_path / 'run'
  workdir.mkdir()
  np.save(workdir / 'samples.npy', np.zeros((64, dataset.dim), np.float32))
  second = suite_lib.Run(task, method, 'final', 0, 2)
  harness.save_sample_grid(suite, second, config, str(workdir))
  path = store.samples_path(suite, task, method)
  assert os.path.isfile(path)
  os.remove(path)
  assert leaderboard.sample_grids(suite, task) == []
  harness.save_sample_grid(suite, suite_lib.Run(task, method, 'final', 0, 1),
                           config, str(workdir))
  lines = leaderboard.sample_grids(suite, task)
  assert lines[-1] == ('![digits: drifting at its chosen point, test seed '
                       '1](../results/digits/samples/drifting.png)')
  # The grid does not break reading the task's stored cells.
  assert store.stored_cell(suite, task, method) == {
      'tune': [], 'final': [], 'default': []}


def _copy_of(finished, tmp_path):
  """A copy of the finished tiny suite's results and workdirs."""
  suite = copy.deepcopy(finished[0])
  for key in ('results', 'workdir'):
    target = str(tmp_path / key)
    shutil.copytree(suite[key], target)
    suite[key] = target
  return suite


def test_a_signal_after_a_runs_last_step_stops_the_suite_before_the_next(
    finished, tmp_path, monkeypatch):
  """SIGTERM landing after a run's last poll (its final evaluation) used to
  be cleared with the run's handler and the suite went on; now the next
  run never starts, and the finished one is stored."""
  suite = _copy_of(finished, tmp_path)
  for seed in (2, 3):
    os.remove(os.path.join(suite['results'], 'ring', 'drifting',
                           f'final_seed{seed}.json'))
    shutil.rmtree(os.path.join(suite['workdir'], 'ring', 'drifting',
                               f'final_seed{seed}'))
  real = harness.execute

  def then_a_signal(*args, **kwargs):
    result = real(*args, **kwargs)
    preemption._record(signal.SIGTERM, None)  # as the handler would
    return result

  monkeypatch.setattr(harness, 'execute', then_a_signal)
  with pytest.raises(preemption.Preempted,
                     match='SIGTERM received: stopped before '
                     'ring/drifting/final_seed3'):
    harness.run_suite(suite)
  ring = os.path.join(suite['results'], 'ring', 'drifting')
  assert os.path.exists(os.path.join(ring, 'final_seed2.json'))
  assert not os.path.exists(os.path.join(suite['workdir'], 'ring',
                                         'drifting', 'final_seed3'))
  assert preemption.requested() is None  # cleared with the suite's handler


def test_damaged_results_files_heal(finished, tmp_path, capsys):
  """Truncated, empty-object, null and binary results, a truncated
  calibration and data row, a stray text file and a complete leftover
  temporary file: each bad file is named in one line and moved aside as
  .bad, and the rerun re-derives every number as it was (the runs from
  their finished workdirs, without training; the calibration from the
  results; the data row by scoring it again)."""
  suite = _copy_of(finished, tmp_path)
  results = suite_lib.results_dir(suite)
  cell = os.path.join(results, 'ring', 'drifting')
  bad = {os.path.join(cell, 'final_seed1.json'): b'{"task": "ri',
         os.path.join(cell, 'tune_p0.json'): b'{}',
         os.path.join(results, 'ring', 'dmd_trained', 'tune_p0.json'):
             b'null',
         os.path.join(cell, 'final_seed2.json'): bytes(range(256)),
         store.calibration_path(suite): b'{"runs": {"ring/dri',
         os.path.join(results, 'ring', 'data_row.json'): b''}
  before = {path: json.load(open(path)) for path in bad}
  for path, content in bad.items():
    with open(path, 'wb') as f:
      f.write(content)
  for stray in (os.path.join(results, 'README.txt'),
                os.path.join(cell, 'notes.txt')):
    with open(stray, 'w') as f:
      f.write('not a result')
  shutil.copy(os.path.join(cell, 'final_seed3.json'),
              os.path.join(cell, 'final_seed3.json.tmp.123'))
  harness.run_suite(suite)
  leaderboard.write(suite)
  err = capsys.readouterr().err
  for path, old in before.items():
    assert err.count(f' {path} ') == 1, path
    assert os.path.exists(path + store.BAD_SUFFIX)
    new = json.load(open(path))
    if 'runs' in old:  # the calibration, rebuilt from the results
      assert {k: v['seconds_per_step'] for k, v in new['runs'].items()} == {
          k: v['seconds_per_step'] for k, v in old['runs'].items()}
    elif 'draws' in old:
      assert new['draws'] == old['draws']
    else:
      assert (new['final'], new['curve']) == (old['final'], old['curve'])
  assert len(store.stored_cell(suite, suite['tasks'][0],
                               suite['methods'][0])['final']) == 3


@pytest.mark.parametrize('change', ['grid', 'budget', 'eval_seed', 'metric'])
def test_results_that_no_longer_match_the_suite_run_again(finished, tmp_path,
                                                          change, capsys):
  """After each change of the suite, the entries it changes are stale: the
  dry run lists them to train again, and the leaderboard leaves them out
  (`provenance`); the others stay."""
  suite = _copy_of(finished, tmp_path)
  assert harness.run_suite(suite, dry_run=True) == []
  task, drifting = suite['tasks'][0], suite['methods'][0]
  if change == 'grid':  # lr (1e-3, 3e-3) -> (1e-3, 1e-2)
    drifting['search'] = {'optim.lr': (1e-3, 1e-2)}
  elif change == 'budget':
    task['budget_seconds'] = 0.4
  elif change == 'eval_seed':
    task['eval_seed'] = 8
  else:
    task['metric'] = 'eval/mmd2_ratio'
  todo = harness.run_suite(suite, dry_run=True)
  stale = [t for t in todo if 'stale' in t]
  if change == 'grid':
    assert stale and all(t.startswith('ring/drifting/') for t in stale)
    assert any('tune_p1' in t for t in stale)
    assert not any('tune_p0' in t for t in stale)
  else:
    assert any(t.startswith('ring/dmd_trained/') for t in stale)
  table = leaderboard.load(suite)
  assert 'left out of the leaderboard' in capsys.readouterr().err
  if change == 'grid':
    lr = [r['overrides'] for r in table[('ring', 'drifting')]['tune']]
    assert {'optim.lr': 3e-3} not in lr and {'optim.lr': 1e-3} in lr
    assert ('ring', 'dmd_trained') in table and ('ring', None) in table
    # The rerun trains the stale entries (keeping them as .stale), and
    # then nothing is stale.
    harness.run_suite(suite)
    assert os.path.exists(suite_lib.Run(task, drifting, 'tune', 1, 0)
                          .result_path(suite) + provenance.STALE_SUFFIX)
    capsys.readouterr()
    assert harness.run_suite(suite, dry_run=True) == []
    table = leaderboard.load(suite)
    assert 'left out' not in capsys.readouterr().err
    assert {'optim.lr': 1e-2} in [
        r['overrides'] for r in table[('ring', 'drifting')]['tune']]
  else:  # every run (and, for the evaluation seed, the data row) is stale
    assert [key for key in table if key[1] is not None] == []
    assert (('ring', None) in table) == (change != 'eval_seed')


def test_the_report_names_what_is_missing_and_trains_nothing(finished,
                                                               tmp_path):
  """`--report_only` (`harness.missing_entries`): a deleted result and a
  deleted data row are named, and nothing is written."""
  suite = _copy_of(finished, tmp_path)
  task, drifting = suite['tasks'][0], suite['methods'][0]
  os.remove(suite_lib.Run(task, drifting, 'final', 0, 1).result_path(suite))
  os.remove(store.data_row_path(suite, task))
  def files():
    return sorted((d, f) for root in (suite['results'], suite['workdir'])
                  for d, _, names in os.walk(root) for f in names)
  before = files()
  missing = harness.missing_entries(suite)
  assert files() == before
  assert missing[0] == 'ring: data row'
  assert [m for m in missing[1:] if 'final_seed1' in m] == missing[1:]
  assert len(missing) == 2 and missing[1].startswith('ring/drifting/')


def test_the_harness_caches_compilations_under_the_suites_workdir(
    tmp_path, monkeypatch):
  suite = tiny_suite(str(tmp_path))
  updates = {}
  monkeypatch.setattr(compare.jax.config, 'update',
                      lambda name, value: updates.update({name: value}))
  monkeypatch.setenv('JAX_COMPILATION_CACHE_DIR', '/elsewhere')
  compare.use_compilation_cache(suite, 'SUITE_WORKDIR/jax_cache')
  assert not updates  # the environment wins
  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR')
  compare.use_compilation_cache(suite, '')
  assert not updates  # off
  compare.use_compilation_cache(suite, 'SUITE_WORKDIR/jax_cache')
  assert updates == {
      'jax_compilation_cache_dir': os.path.join(tmp_path, 'runs', 'jax_cache'),
      'jax_persistent_cache_min_compile_time_secs': 0,
      'jax_persistent_cache_min_entry_size_bytes': 0}


def test_a_second_harness_on_one_results_directory_is_refused(finished,
                                                              tmp_path):
  suite = _copy_of(finished, tmp_path)
  results = suite_lib.results_dir(suite)
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  code = ('import sys, time; from drift_jax.train import workdir; '
          f'ctx = workdir.lock({results!r}); ctx.__enter__(); '
          'print("held", flush=True); time.sleep(60)')
  holder = subprocess.Popen([sys.executable, '-c', code], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    suite_file = tmp_path / 'suite.py'
    suite_file.write_text(f'def get_suite():\n  return {suite!r}\n')
    out = subprocess.run(
        [sys.executable, '-m', 'experiments.compare',
         f'--suite={suite_file}', '--report_only'], cwd=ROOT, env=env,
        capture_output=True, text=True)
  finally:
    holder.kill()
  assert out.returncode == 1
  lines = [line for line in out.stderr.splitlines()
           if line.startswith('error')]
  assert len(lines) == 1 and 'is in use by pid' in lines[0], out.stderr


def test_the_budget_axis_runs_the_finalists_at_each_budget(finished,
                                                           tmp_path):
  """A task's further `budgets`: the finalists' chosen points trained with
  the final seeds for the steps each budget buys, and the leaderboard's
  'Rank against budget' section."""
  suite = _copy_of(finished, tmp_path)
  task = suite['tasks'][0]
  task['budgets'] = (0.6,)
  suite_lib.check_suite(suite)
  names = sorted(harness.finalists(suite, task))
  todo = harness.run_suite(suite, dry_run=True)
  assert sorted(t.split(':')[0] for t in todo) == [
      f'ring@0.6s/{n}/final_seed{s}' for n in names
      for s in suite['final_seeds']]
  # `--methods` splits the axis between workers: each trains its own.
  for name in names:
    assert sorted(t.split(':')[0] for t in harness.run_suite(
        suite, dry_run=True, only_methods=[name])) == [
            f'ring@0.6s/{name}/final_seed{s}' for s in suite['final_seeds']]
  harness.run_suite(suite)
  assert harness.run_suite(suite, dry_run=True) == []
  table = leaderboard.load(suite)
  calibrations = store.stored_calibrations(suite)
  for name in names:
    method = next(m for m in suite['methods'] if m['name'] == name)
    main, longer = (table[(t, name)]['final'] for t in ('ring', 'ring@0.6s'))
    assert [r['seed'] for r in longer] == list(suite['final_seeds'])
    assert {r['point'] for r in longer} == {main[0]['point']}
    config = suite_lib.point_config(task, method, main[0]['overrides'])
    budget = budget_lib.split_budget(0.6, calibrations[f'ring/{name}'],
                                     config, config.train.steps_per_call)
    assert longer[0]['steps'] == budget.steps > main[0]['steps']
  text = open(leaderboard.write(suite)).read()
  assert '## Rank against budget' in text
  assert '| method | 0.2 s | 0.6 s |' in text
  assert 'At 0.2 s the order is' in text


def test_a_key_added_to_the_schema_leaves_results_current(finished,
                                                          tmp_path):
  """A result stored before a config key existed (its config lacks the key,
  so its hash differs) is still current: the key takes its default, as on
  resume. A key both configs hold with another value is a change."""
  suite = _copy_of(finished, tmp_path)
  run = suite_lib.Run(suite['tasks'][0], suite['methods'][0], 'final', 0, 1)
  path = run.result_path(suite)
  stored = json.load(open(path))
  del stored['config']['optim.b2']  # "did not exist yet"
  stored['provenance']['config_sha256'] = 'older schema'
  store.write_json(path, stored)
  assert harness.run_suite(suite, dry_run=True) == []
  stored['config']['optim.b1'] = 0.5
  store.write_json(path, stored)
  [todo] = harness.run_suite(suite, dry_run=True)
  assert todo.startswith('ring/drifting/final_seed1: stale (config_sha256')


def test_a_cell_whose_step_changed_is_calibrated_again(finished, tmp_path):
  """A calibration records the config it timed: a changed network (or
  batch) makes the cell's calibration out of date, so it is measured
  again (and its results trained again); a changed evaluation, or an
  entry from before configs were recorded, keeps it."""
  suite = _copy_of(finished, tmp_path)
  task, method = suite['tasks'][0], suite['methods'][0]
  entry = budget_lib.current_calibration(suite, task, method)
  assert entry is not None and 'config' in entry
  wider = copy.deepcopy(method)
  wider['overrides']['model.generator.width'] = 2 * entry['config'][
      'model.generator.width']
  assert budget_lib.outdated_keys(entry, task, wider) == [
      'model.generator.width']
  assert budget_lib.current_calibration(suite, task, wider) is None
  suite['methods'][0] = wider
  todo = harness.run_suite(suite, dry_run=True)
  assert 'ring/drifting: calibrate, then 2 tuning and 2 final runs' in todo
  assert budget_lib.calibrate(suite, task, wider)['config'][
      'model.generator.width'] == wider['overrides']['model.generator.width']
  # DMD's timing runs include its teacher's, whose checkpoints of the old
  # config are cleared rather than refused.
  dmd = copy.deepcopy(suite['methods'][1])
  dmd['overrides']['model.denoiser.width'] = 2 * entry['config'][
      'model.denoiser.width']
  assert budget_lib.calibrate(suite, task, dmd)['config'][
      'model.denoiser.width'] == dmd['overrides']['model.denoiser.width']
  evaluated = copy.deepcopy(method)
  evaluated['overrides']['eval.num_samples'] = 64  # not timed
  assert budget_lib.outdated_keys(entry, task, evaluated) == []
  legacy = {k: v for k, v in entry.items() if k != 'config'}
  assert budget_lib.outdated_keys(legacy, task, wider) == []


def test_a_budget_its_precomputations_exceed_is_stored_as_not_fitting(
    finished, tmp_path):
  """DMD's regression pairs (12.7 s on the digits) exceed a 4-s budget
  axis: such a run trains nothing and is stored as failed with the reason
  (ranked after every method that trained), where it used to stop the
  suite and its report with a ValueError."""
  suite = _copy_of(finished, tmp_path)
  task = {**suite['tasks'][0], 'name': 'ring@0.05s', 'budget_seconds': 0.05,
          'base': 'ring'}
  method = copy.deepcopy(suite['methods'][1])
  method['overrides']['dmd.regression_weight'] = 0.25
  point = {'dmd.teacher_share': 0.5}
  calibration = {'seconds_per_step': 0.01, 'teacher_seconds_per_step': 0.01,
                 'regression_setup_seconds': 0.1}
  run = suite_lib.Run(task, method, 'final', 0, 1, point)
  todo = []
  assert harness._result_or_run(suite, run, calibration, point, True, None,
                                todo) is None
  [line] = todo
  assert line.startswith('ring@0.05s/dmd_trained/final_seed1: does not fit')
  assert not os.path.exists(run.result_path(suite))  # a dry run writes none
  stored = harness._result_or_run(suite, run, calibration, point, False,
                                  None, [])
  assert stored['status'] == harness.DOES_NOT_FIT and stored['steps'] == 0
  assert 'leave nothing of the 0.05 s budget' in stored['error']
  assert not os.path.exists(run.workdir(suite))  # nothing trained
  todo = []
  assert harness._result_or_run(suite, run, calibration, point, True, None,
                                todo) == stored and todo == []
  assert math.isnan(verdicts.values([stored], suite['tasks'][0]['metric'])[0])
  assert budget_report._cell([stored], 'eval/energy_distance_ratio', 2) == (
      'does not fit (2)')
  # The leaderboard reads it as current (it used to stop on the
  # ValueError while checking the stored result's budget).
  assert harness.stale_changes(suite, run, stored, calibration) == []
  # A calibration under which it fits makes the stored entry stale.
  todo = []
  harness._result_or_run(suite, run, {**calibration,
                                      'regression_setup_seconds': 0.01},
                         point, True, None, todo)
  assert todo == ['ring@0.05s/dmd_trained/final_seed1: stale (budget '
                  'changed), to train again']
