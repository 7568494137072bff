"""The chained training step compiles once (the runner's loop, field_bench
and device_check chain the same `runner.make_step_fn`), and the device
check command runs on a CPU at smoke sizes."""

import jax
import jax.numpy as jnp

from drift_jax import methods
from drift_jax.data import datasets as data_lib
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from drift_jax.train import runner
from drift_jax.train import summary as summary_lib
from experiments.benchmarks import device_check


def _method_and_mesh():
  c = methods.base_config()
  methods.runlocal(c)
  mesh = parallel.make_mesh(1)
  return methods.get('drifting').make(c, RunContext(dim=2, mesh=mesh)), mesh


def _chain(state, method, mesh, calls=3):
  step_fn = runner.make_step_fn(method, mesh, seed=0)
  batch = jnp.ones((1, 64, 2))
  for i in range(calls):
    state, _ = step_fn(state, method.constants, batch,
                       jnp.asarray(i, jnp.int32))
  jax.block_until_ready(state)
  return step_fn._cache_size()  # noqa: SLF001 (compiled programs)


def test_chained_step_compiles_once_from_init_state():
  method, mesh = _method_and_mesh()
  assert _chain(runner.init_state(method, mesh, seed=0), method, mesh) == 1


def test_an_uncommitted_state_would_compile_twice():
  """What field_bench measured before: its state came from method.init
  outside jit, so the second chained call compiled the step again (2.5 s
  on the CPU, inside the timed loop)."""
  method, mesh = _method_and_mesh()
  assert _chain(method.init(jax.random.key(0)), method, mesh) == 2


def test_seeds_share_one_program():
  """The step's and the data draw's keys are arguments (`parallel.keyed`),
  not constants: two seeds lower to the same program text, so the
  persistent compilation cache serves every seed of a config after the
  first (with the key closed over, each seed compiled its own)."""
  method, mesh = _method_and_mesh()
  state = runner.init_state(method, mesh, seed=0)
  batch = jnp.ones((1, 64, 2))
  step = jnp.asarray(0, jnp.int32)
  texts = [runner.make_step_fn(method, mesh, seed).lower(
      state, method.constants, batch, step).as_text() for seed in (1, 2)]
  assert texts[0] == texts[1]
  dataset = data_lib.for_run(methods.base_config())
  draws = [data_lib.make_batch_fn(dataset, mesh, batch_size=8,
                                  steps_per_call=1, seed=seed)
           for seed in (1, 2)]
  assert draws[0].lower(step).as_text() == draws[1].lower(step).as_text()
  # ... while the draws themselves differ by seed.
  assert not jnp.array_equal(draws[0](step), draws[1](step))


def test_device_check_runs_on_a_cpu_at_smoke_sizes():
  table = device_check.run(quick=True, image=False, main_job=False)
  rows = [line for line in table.splitlines() if line.startswith('| ')]
  checks = [row.split('|')[1].strip() for row in rows[1:]]
  assert checks.count('chained step') == 2 and checks.count('field') == 2
  for name in ('gradient', 'field error vs float64',
               'field, compile included'):
    assert name in checks, name
  assert 'nan' not in table and 'does not fit' not in table


def test_device_check_reads_the_run_summarys_wall_seconds():
  """The main-job row parses the summary the runner prints."""
  config = methods.base_config()
  lines = summary_lib.lines(config, {'step': 3, 'time/wall_seconds': 12.34,
                                     'eval/energy_distance': 1.0,
                                     'eval/energy_distance_floor': 0.5})
  assert device_check.summary_wall_seconds('\n'.join(lines)) == 12.3


def test_precomputations_are_timed_warm_and_make_the_same_pairs(tmp_path):
  """`runner.setup_seconds` times DMD's regression pairs (a teacher ODE per
  pair) after a compiling call; the timed call makes the pairs the run
  uses. A method with none declares nothing."""
  from drift_jax.config import config_lib
  from drift_jax.methods import dmd
  config = config_lib.load_config_file('configs/gmm.py:runlocal')
  config.method, config.dmd.teacher = 'dmd', 'oracle'
  config = methods.finalize(config, overridden=('method', 'dmd.teacher'))
  assert config.dmd.regression_weight > 0  # gmm's DMD regresses
  assert methods.setups(config) == ('regression',)
  seconds = runner.setup_seconds(config, str(tmp_path / 'dmd'))
  assert list(seconds) == ['regression_setup_seconds']
  assert 0 < seconds['regression_setup_seconds'] < 60
  (tmp_path / 'again').mkdir()
  _, method, ctx, *_ = runner._prepare(config, str(tmp_path / 'again'))  # noqa: SLF001
  [make_again] = methods.setup_work(config, ctx).values()
  pairs = dmd.regression_pairs(config, ctx, ctx.get('teacher'))
  again = make_again()
  for key in ('z', 'y'):
    assert jnp.array_equal(again[key], method.constants['regression'][key])
    assert jnp.array_equal(pairs[key], again[key])
  config.dmd.regression_weight = 0.0
  assert runner.setup_seconds(config, str(tmp_path / 'none')) == {}
