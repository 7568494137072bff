"""The sweep (`drift_jax.studies.sweep`, behind `experiments/ablate.py`):
grid, resume, tables and plots on tiny runs."""

import csv
import os

import pytest

from drift_jax.studies import sweep as ablate

SWEEP = '''
def get_sweep():
  return {
      'base': 'configs/toy2d.py:runlocal',
      'overrides': {'train.steps': 4, 'train.eval_every': 2},
      'grid': {'field.temperatures': [(0.05,), (0.05, 0.2)],
               'method': [{'name': 'drift', 'method': 'drifting'}]},
      'seeds': 2,
      'plot_metrics': ('train/loss',),
  }
'''


def _write(tmp_path, text):
  path = tmp_path / 'sweep.py'
  path.write_text(text)
  return str(path)


def test_sweep_runs_tabulates_plots_and_resumes(tmp_path, monkeypatch,
                                                capsys):
  workdir = str(tmp_path / 'sweep')
  ablate.run(_write(tmp_path, SWEEP), workdir)
  with open(os.path.join(workdir, 'results.csv')) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 4  # 2 points x 2 seeds
  assert {r['field.temperatures'] for r in rows} == {'0.05', '0.05+0.2'}
  # A grid axis named like a column keeps its label ('drift', the bundle's
  # name), next to the resolved config value.
  assert {(r['method'], r['config.method']) for r in rows} == {
      ('drift', 'drifting')}
  assert all(float(r['eval/energy_distance_ratio']) > 0 for r in rows)
  # Time to quality: the first evaluation at <= 2x the floor, or NaN.
  for r in rows:
    records = [rec for rec in ablate.reporting.read_metrics(r['run_dir'])
               if 'eval/energy_distance_ratio' in rec]
    hits = [rec for rec in records
            if rec['eval/energy_distance_ratio'] <= 2.0]
    if hits:
      assert float(r['steps_to_2x_floor']) == hits[0]['step']
    else:
      assert r['steps_to_2x_floor'] == 'nan'
  table = open(os.path.join(workdir, 'results.md')).read()
  assert table.count('+-') >= 2 and '0.05+0.2' in table
  for name in ('samples.png', 'metric_vs_step.png', 'metric_vs_wall.png',
               'train_loss_vs_step.png', 'fields.png'):
    assert os.path.getsize(os.path.join(workdir, name)) > 0

  # A second invocation trains nothing: every run left its result.json.
  def no_training(*args, **kwargs):
    raise AssertionError('finished runs must be skipped')
  monkeypatch.setattr(ablate.runner, 'train_and_evaluate', no_training)
  ablate.run(_write(tmp_path, SWEEP), workdir)

  # An interrupted sweep: a run without result.json is trained again.
  os.remove(os.path.join(workdir, rows[0]['point'], 'seed_0',
                         ablate.RESULT_FILE))
  with pytest.raises(AssertionError, match='skipped'):
    ablate.run(_write(tmp_path, SWEEP), workdir)

  # Damaged results heal: each is named in one line, moved aside as .bad
  # and derived again from its finished workdir, to the same numbers.
  monkeypatch.undo()
  ablate.run(_write(tmp_path, SWEEP), workdir)  # the removed one, again
  damaged = [os.path.join(r['run_dir'], ablate.RESULT_FILE) for r in rows]
  with open(damaged[1], 'r+') as f:
    f.truncate(40)
  with open(damaged[2], 'w') as f:
    f.write('null')
  ablate.run(_write(tmp_path, SWEEP), workdir)
  err = capsys.readouterr().err
  for path in damaged[1:3]:
    assert f'warning: result {path} ' in err
    assert os.path.exists(path + '.bad')
  with open(os.path.join(workdir, 'results.csv')) as f:
    healed = list(csv.DictReader(f))
  metric = 'eval/energy_distance_ratio'
  assert [r[metric] for r in healed] == [r[metric] for r in rows]


def test_unknown_keys_fail_before_training(tmp_path):
  bad = SWEEP.replace("'field.temperatures'", "'field.temperature'")
  with pytest.raises(KeyError, match='field.temperature'):
    ablate.run(_write(tmp_path, bad), str(tmp_path / 'w'))
  with pytest.raises(ValueError, match='unknown keys'):
    ablate.run(_write(tmp_path, SWEEP.replace("'seeds'", "'seed'")),
               str(tmp_path / 'w'))
  with pytest.raises(FileNotFoundError, match='nope.py'):
    ablate.run('nope.py', str(tmp_path / 'w'))
