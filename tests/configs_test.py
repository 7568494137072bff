"""Config files load through absl/config_flags; bad configs fail clearly."""

import glob
import os

import jax
import ml_collections
import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.studies import harness
from drift_jax.studies import suite as suite_lib
from tests import runner_helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))


def _load(argv_tail):
  return runner_helpers.load_flags_config(argv_tail)[0]


def test_there_are_config_files():
  names = {os.path.basename(p) for p in CONFIG_FILES}
  assert {'toy2d.py', 'gmm.py'} <= names


@pytest.mark.parametrize('path', CONFIG_FILES, ids=os.path.basename)
@pytest.mark.parametrize('method', methods.METHODS)
def test_every_config_loads_with_runlocal(path, method):
  c = _load([f'--config={path}:method={method},runlocal'])
  methods.validate(c, jax.device_count())
  assert c.method == method
  assert c.train.steps <= 10 and c.train.log_every == 1


def test_flag_overrides_are_typed_and_tuples_survive():
  path = os.path.join(ROOT, 'configs', 'toy2d.py')
  c = _load([f'--config={path}:dataset=swiss_roll',
             '--config.train.steps=40',
             '--config.field.temperatures=(0.02,0.05,0.2)'])
  assert c.data.name == 'swiss_roll' and c.train.steps == 40
  assert tuple(c.field.temperatures) == (0.02, 0.05, 0.2)
  with pytest.raises(Exception, match='nosuchkey'):
    _load([f'--config={path}', '--config.train.nosuchkey=1'])


def test_recipe_is_the_papers_demo():
  path = os.path.join(ROOT, 'configs', 'toy2d.py')
  c = _load([f'--config={path}:recipe'])
  g = c.model.generator
  assert (g.noise_dim, g.width, g.depth) == (32, 256, 3)
  assert (c.train.steps, c.train.batch_size, c.train.gen_batch_size) == (
      2000, 2048, 2048)
  assert c.optim.lr == 1e-3 and c.train.ema_decay == 0.0
  assert tuple(c.field.temperatures) == (0.05,)
  assert (c.field.kernel, c.field.normalization, c.field.mask_self) == (
      'laplace', 'bidirectional', True)


def test_config_arguments_are_checked():
  with pytest.raises(ValueError, match="Unknown config argument 'datset'"):
    config_lib.parse_arg('datset=x', dataset='checkerboard')
  with pytest.raises(ValueError, match="'dim' must be an integer"):
    config_lib.parse_arg('dim=two', dim=2)
  with pytest.raises(ValueError, match="'runlocal' must be true/false"):
    config_lib.parse_arg('runlocal=maybe', runlocal=False)
  got = config_lib.parse_arg('dim=8,runlocal', dim=2, runlocal=False)
  assert got.dim == 8 and got.runlocal is True


def _config(**flat):
  c = methods.base_config()
  methods.runlocal(c)
  c.update_from_flattened_dict(flat)
  return c


@pytest.mark.parametrize('flat,devices,message', [
    ({'method': 'dmd', 'data.name': 'checkerboard', 'dmd.teacher': 'oracle'},
     1, "dmd.teacher='oracle'` needs Gaussian-mixture data"),
    ({'train.batch_size': 100}, 8,
     '`train.batch_size` = 100 is not divisible by the device count'),
    ({'train.steps_per_call': 4}, 1,
     'must be a multiple of `train.steps_per_call`'),
    ({'data.name': 'file'}, 1, '`data.path` is required'),
    ({'data.name': 'file', 'data.path': '/nonexistent/cloud.npy'}, 1,
     'does not exist'),
    ({'data.name': 'moons'}, 1, '`data.name` must be one of'),
    ({'drifting.negatives_scope': 'everywhere'}, 1, 'negatives_scope'),
    ({'method': 'dmd', 'data.name': 'gmm', 'dmd.teacher': '/no/such/run'},
     1, '`dmd.teacher` must be'),
    ({'train.ema_decay': 1.0}, 1, '`train.ema_decay` must be in'),
    ({'method': 'flow'}, 1, '`method` must be one of'),
])
def test_impossible_configs_fail_at_start_up(flat, devices, message):
  with pytest.raises(ValueError, match=message.replace('(', r'\(')):
    methods.validate(_config(**flat), devices)


def test_unknown_and_mistyped_keys_are_named():
  c = _config()
  c.train.stpes = 10
  with pytest.raises(ValueError, match=r"Unknown config keys: \['train.stpes'"):
    methods.validate(c, 1)
  # ConfigDict refuses a mistyped assignment itself, naming the field ...
  with pytest.raises(TypeError, match="field 'steps'"):
    _config().train.steps = '10'
  # ... and `validate` catches configs built from plain dicts (e.g. JSON).
  for key, value, message in (
      ('steps', '10', "'train.steps' must be int, got str"),
      ('progress', 1, "'train.progress' must be bool, got int")):
    raw = _config().to_dict()
    raw['train'][key] = value
    with pytest.raises(ValueError, match=message):
      methods.validate(ml_collections.ConfigDict(raw), 1)


@pytest.mark.parametrize('suite_file', ['core.py', 'core_v2.py'])
@pytest.mark.parametrize('config_file', ['toy2d.py', 'gmm.py', 'digits.py'])
def test_drifting_default_is_the_leaderboards_cross_task_config(
    config_file, suite_file, monkeypatch):
  """Issue 16, 'defaults that generalise': the configs' drifting
  defaults are the point the core suites' stored tuning runs chose across
  every task (results/core and results/core_v2, committed; both chose the
  same), with the field the suite ran."""
  monkeypatch.chdir(ROOT)
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', suite_file))
  method = next(m for m in suite['methods']
                if m['name'] == suite['default_method'])
  point = harness.cross_task_point(suite, method)
  assert point is not None, f'{suite_file}: its results lack tuning runs'
  expected = {**method['overrides'], **suite_lib.search_points(method)[point]}
  c = _load([f'--config={os.path.join(ROOT, "configs", config_file)}'])
  for key, value in expected.items():
    node = c
    for part in key.split('.'):
      node = node[part]
    got = tuple(node) if isinstance(node, (list, tuple)) else node
    want = tuple(value) if isinstance(value, (list, tuple)) else value
    if isinstance(want, float):
      want = pytest.approx(want)
    assert got == want, key
