"""Test setup: 8 fake CPU devices, a shared compilation cache, and tiers.

Tiers (markers applied here, by file, never by hand):
  unit         pure functions, networks, configs: no training loop, no
               subprocess (`pytest -m unit`, the quick loop);
  integration  the runner's loop in-process for a few steps (runs,
               resumes, image pipelines, classifiers);
  system       real subprocesses, notebooks, several processes, and the
               comparison harness and sweeps end to end.
A unit test that starts the training loop or a subprocess fails, naming
the tier its file belongs in, so the quick tier stays quick.
"""

import os
import pathlib

# Must happen before JAX initialises its backends (README runs the suite with
# JAX_NUM_CPU_DEVICES=8; this default keeps a bare `pytest` equivalent).
os.environ.setdefault('JAX_NUM_CPU_DEVICES', '8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# One persistent XLA compilation cache for every xdist worker and every
# subprocess a test starts (they inherit the environment): the runs of the
# suite compile many identical programs (a seed is data, not code), and
# measured on tests/compare_test.py alone it took the file from 102 s to
# 90 s cold and 66 s warm. Executables are keyed by their HLO, compile
# options and the jax version, so a stale entry is never used.
ROOT = pathlib.Path(__file__).resolve().parent.parent
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', str(ROOT / '.jax_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

# XLA's CPU backend without LLVM's optimisation passes: the suite's programs
# are small and compiled once or twice each, so compiling, not running, is
# most of its time (a digits feature-space run: 32 s -> 22 s). The code XLA
# emits is the same; its float results can differ from the optimised
# build's in the last bits (6e-5 relative in a first-step statistic), well
# inside every tolerance here, which already allows for other CPU types.
#
# And XLA's CPU fusions through its older LLVM emitters rather than the
# MLIR fusion emitters: the same fused programs, compiled in about two
# thirds of the time (cold cache, one process: tests/dit_test.py 34 s ->
# 24 s; fields_test + chained_step_test 127 s -> 90 s).
for flag in ('--xla_backend_optimization_level=0',
             '--xla_cpu_use_fusion_emitters=false'):
  if flag.split('=')[0] not in os.environ.get('XLA_FLAGS', ''):
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' '
                               + flag).strip()

import jax  # noqa: E402
import pytest  # noqa: E402

TIERS = ('unit', 'integration', 'system')
# Files outside the unit tier (the default).
INTEGRATION = frozenset({
    'boundary_test', 'classifier_test', 'evaluation_sets_test',
    'image_data_test', 'images_test', 'new_method_test', 'runner_test',
    'schedule_test', 'sinkhorn_test', 'conservative_test', 'configs_test',
    'chained_step_test', 'new_network_test', 'new_evaluator_test',
    'new_field_test', 'fashion_mnist_runs_test', 'wandb_test',
    'digests_test', 'mirror_test', 'latent_test', 'stream_runs_test',
})
SYSTEM = frozenset({
    'ablate_test', 'cli_test', 'compare_test', 'multihost_test',
    'notebooks_test', 'reliability_test', 'sampling_test',
})


def tier_of(path) -> str:
  """The tier of a test file (by its stem)."""
  stem = pathlib.Path(path).stem
  if stem in SYSTEM:
    return 'system'
  return 'integration' if stem in INTEGRATION else 'unit'


def pytest_configure(config):
  for tier in TIERS:
    config.addinivalue_line('markers', f'{tier}: the {tier} tier '
                            '(applied by tests/conftest.py from the file)')


def pytest_collection_modifyitems(items):
  for item in items:
    item.add_marker(tier_of(item.path))


@pytest.fixture(autouse=True)
def _unit_tests_stay_unit(request, monkeypatch):
  """In the unit tier the training loop and subprocesses raise."""
  if tier_of(request.node.path) != 'unit':
    yield
    return
  import subprocess

  from drift_jax.train import runner

  def refuse(what):
    def fail(*args, **kwargs):
      raise AssertionError(
          f'{request.node.path.name} is in the unit tier but started '
          f'{what}; add it to INTEGRATION or SYSTEM in tests/conftest.py.')
    return fail

  monkeypatch.setattr(runner, 'train_and_evaluate',
                      refuse('the training loop'))
  monkeypatch.setattr(subprocess, 'Popen', refuse('a subprocess'))
  yield


@pytest.fixture
def x64():
  """Runs a test with float64 enabled (identity checks to round-off)."""
  with jax.enable_x64(True):
    yield


@pytest.fixture(scope='session')
def digits_classifier(tmp_path_factory):
  """The evaluation classifier of every `configs/digits.py:runlocal` run,
  trained once per test session and shared by the xdist workers (the first
  to take the lock trains it, the others wait and read it). It depends on
  the data, their split and evaluation sets and the `classifier` section
  only (`methods.classifier.run_config`), so a test that passes it as
  `eval.classifier` scores with exactly the network its run would train."""
  import fcntl

  from drift_jax import methods
  from drift_jax.config import config_lib
  from drift_jax.data import datasets
  from drift_jax.train import prerequisites
  from drift_jax.train import runner

  base = tmp_path_factory.getbasetemp()
  # Under xdist each worker's basetemp is a folder of the session's.
  shared = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base
  directory = shared / 'shared_digits_classifier'
  with open(shared / 'shared_digits_classifier.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    student = methods.finalize(config_lib.load_config_file(
        'configs/digits.py:runlocal'))
    request = prerequisites.eval_classifier(student,
                                            datasets.for_run(student))
    # Trains it, or finds it finished and returns at once.
    runner.train_and_evaluate(request.run_config, str(directory))
  return str(directory)
