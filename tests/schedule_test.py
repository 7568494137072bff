"""Temperature schedules: a traced per-temperature scale evaluates the
field at tau_k s_k for every normalisation (no recompilation per step), and
an exponentially annealed run compiles its step once."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import fields
from drift_jax import methods
from drift_jax.methods import drifting
from drift_jax.train import reporting
from drift_jax.train import runner
from drift_jax.train import workdir as workdir_lib


def _points():
  x = jnp.linspace(-1.0, 1.0, 60).reshape(30, 2)
  return x, jnp.cos(3 * x) + 0.2


@pytest.mark.parametrize('normalization', list(fields.NORMALIZATIONS))
def test_scaled_temperatures_are_the_scaled_field(normalization):
  x, pos = _points()
  kwargs = dict(normalization=normalization, normalize_distances=True)
  scaled = fields.FieldSpec(temperatures=(0.1, 0.4), **kwargs)(
      x, pos, x, temperature_scale=jnp.array([2.0, 0.5]))
  direct = fields.FieldSpec(temperatures=(0.2, 0.2), **kwargs)(x, pos, x)
  # float32; the companion's log(tau) term rounds differently: 1e-5.
  np.testing.assert_allclose(scaled, direct, rtol=1e-5, atol=1e-6)


def test_scale_has_one_entry_per_temperature():
  x, pos = _points()
  with pytest.raises(ValueError, match='one per temperature'):
    fields.FieldSpec(temperatures=(0.1, 0.4))(
        x, pos, x, temperature_scale=jnp.ones(3))


def _config(**schedule):
  c = methods.base_config()
  methods.runlocal(c)
  c.eval.plot = False
  c.train.update(steps=12, log_every=3, eval_every=12, checkpoint_every=12)
  c.field.temperatures = (0.05, 0.2)
  c.drifting.update(**schedule)
  return c


def test_exponential_annealing_follows_the_formula_and_compiles_once(
    tmp_path):
  c = _config(temperature_schedule='exponential', anneal_rate=0.1,
              min_temperature=0.04)
  summary = runner.train_and_evaluate(c, str(tmp_path))
  assert summary['num_compiles'] == 1
  logged = {r['step']: r['train/temperature_scale']
            for r in reporting.read_metrics(str(tmp_path))
            if 'train/temperature_scale' in r}
  # The step that produced record `s` ran at step number s - 1; the first
  # temperature (0.05) reaches the floor 0.04 at scale 0.8 (step 2.2).
  for step, scale in logged.items():
    want = max(np.exp(-0.1 * (step - 1)), 0.04 / 0.05)
    np.testing.assert_allclose(scale, want, rtol=1e-6)
  assert sorted(logged) == [3, 6, 9, 12]
  schedule = drifting.temperature_schedule(c)
  np.testing.assert_allclose(schedule(0), [1.0, 1.0])
  np.testing.assert_allclose(schedule(30), [0.8, 0.2], rtol=1e-6)  # floors
  np.testing.assert_allclose(schedule(10), [0.8, np.exp(-1.0)], rtol=1e-6)


@pytest.mark.parametrize('field, match', [
    (dict(temperature_schedule='cosine'), 'temperature_schedule'),
    (dict(temperature_schedule='exponential'), 'anneal_rate'),
    (dict(anneal_rate=-1.0), 'anneal_rate'),
    (dict(min_temperature=float('nan')), 'min_temperature'),
    (dict(temperature_schedule='exponential', anneal_rate=0.1,
          negatives_scope='local'), 'negatives_scope'),
])
def test_bad_schedules_name_the_key(field, match):
  with pytest.raises(ValueError, match=match):
    methods.validate(_config(**field), 1)


def test_a_config_json_with_the_old_field_keys_is_compared_by_new_names():
  """negatives_scope and the schedule moved from `field` to `drifting`: a
  config.json written before still resumes when nothing changed, and a
  real change is still refused."""
  renamed = methods.renamed_keys()
  assert renamed['field.negatives_scope'] == 'drifting.negatives_scope'
  current = methods.base_config().to_dict()
  saved = json.loads(json.dumps(methods.base_config().to_dict()))
  moved = saved.pop('drifting')
  saved['field'].update(moved)
  assert workdir_lib.config_changes(saved, current, renamed) == []
  saved['field']['negatives_scope'] = 'local'
  assert workdir_lib.config_changes(saved, current, renamed) == [
      "drifting.negatives_scope: 'local' -> 'global'"]


def test_wall_seconds_logged_under_budget_names_read_as_time(tmp_path):
  """Measured wall time is `time/*` (allotted compute is `budget/*`); a
  metrics.jsonl written before the rename reads under the new names."""
  (tmp_path / reporting.METRICS_FILE).write_text(json.dumps(
      {'step': 3, 'budget/total_seconds': 2.5, 'budget/teacher_steps': 4,
       'budget/teacher_seconds': 1.0}) + '\n')
  record, = reporting.read_metrics(str(tmp_path))
  assert record == {'step': 3, 'time/total_wall_seconds': 2.5,
                    'budget/teacher_steps': 4,
                    'time/teacher_wall_seconds': 1.0}
