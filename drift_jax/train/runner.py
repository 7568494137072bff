"""`train_and_evaluate(config, workdir)`: the one loop every method uses.

The runner owns data, devices, evaluation, logging and checkpoints; a method
(`drift_jax.methods`) owns only its state and its step. Drifting and DMD
therefore share the generator, optimiser, EMA, data stream, evaluation,
device layout and compute accounting, and differ only in how V is estimated.

Reproducibility: the data batch and the step's random key are functions of
(seed, step) only, never of the device or process count; the state and the
step number are checkpointed, so a run resumed from a checkpoint continues
the trajectory of an uninterrupted one.
"""

from __future__ import annotations

import contextvars
import functools
import os
import shutil
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax import lax

from drift_jax import evaluators
from drift_jax import methods
from drift_jax.data import datasets as data_lib
from drift_jax.data import stream as stream_lib
from drift_jax.encoders import latent as latent_lib
from drift_jax.methods.context import RunContext
from drift_jax.parallel import keyed
from drift_jax.parallel import sharding as parallel
from drift_jax.train import checkpoint
from drift_jax.train import guards
from drift_jax.train import mirror
from drift_jax.train import preemption
from drift_jax.train import prerequisites as prerequisites_lib
from drift_jax.train import reporting
from drift_jax.train import workdir as workdir_lib
from drift_jax.train.workdir import CHECKPOINT_DIR
from drift_jax.train.workdir import CONFIG_FILE
from drift_jax.train.workdir import SAMPLES_FILE
from drift_jax.train.workdir import read_budget

__all__ = ['CHECKPOINT_DIR', 'CONFIG_FILE', 'SAMPLES_FILE', 'read_budget',
           'train_and_evaluate']


# ------------------------------------------------------------------ set-up


def _init_key(seed: int):
  return jax.random.fold_in(jax.random.key(seed), 0x1417)


def evaluation_key(seed: int):
  """The key every evaluation of a run samples with (the same at every
  evaluation step, so samples differ only by the weights)."""
  return jax.random.fold_in(jax.random.key(seed), 0xE7A1)


def state_shardings(method, mesh, seed: int):
  """The shardings of the method's state on `mesh`
  (`parallel.state_shardings`: split along 'fsdp', else replicated), from
  its shapes alone."""
  return parallel.state_shardings(
      jax.eval_shape(method.init, _init_key(seed)), mesh)


def init_state(method, mesh, seed: int):
  """The method's initial state, built in its shardings (`state_shardings`;
  a state too large for one device never exists whole) and committed, so
  the first chained step compiles the program every later step reuses."""
  return jax.jit(method.init,
                 out_shardings=state_shardings(method, mesh, seed))(
                     _init_key(seed))


def make_step_fn(method, mesh, seed, num_traces=None):
  """jit(k steps under lax.scan): one dispatch per `train.steps_per_call`;
  state donated and returned in its shardings (`state_shardings`), metrics
  replicated. `step_fn(state, constants, batches [k, B, ...], step)`;
  `num_traces[0]` counts its traces.

  The runner's loop, `field_bench --sections train` and
  `benchmarks.device_check` all chain this function, so they measure the
  same step. Its input state must be in those shardings (`init_state` or
  a restored checkpoint): an uncommitted state would compile it a second
  time at the second call, when the state it returned comes back.
  """
  num_traces = [0] if num_traces is None else num_traces
  base_key = jax.random.fold_in(jax.random.key(seed), 0x57E9)
  replicated = parallel.replicated(mesh)
  shardings = state_shardings(method, mesh, seed)

  # [k, B, D] batches; base_key an argument (`keyed`): seeds share a program
  def multi_step(state, constants, batches, step, base_key):
    num_traces[0] += 1  # Python side effect: counts (re)compilations

    def body(carry, batch):
      state, step = carry
      key = jax.random.fold_in(base_key, step)
      state, metrics = method.train_step(state, constants, batch, key,
                                         step)
      return (state, step + 1), metrics

    if jax.tree.leaves(batches)[0].shape[0] == 1:
      # No loop for one step: XLA:CPU runs convolutions inside a while
      # loop ~25x slower than outside one (measured on the digits
      # generator), so a scan of length 1 is not free.
      (state, _), metrics = body((state, step),
                                 jax.tree.map(lambda b: b[0], batches))
      return state, metrics
    (state, _), metrics = lax.scan(body, (state, step), batches)
    return state, jax.tree.map(lambda m: m[-1], metrics)

  return keyed.KeyedJit(multi_step, base_key, donate_argnums=0,
                        out_shardings=(shardings, replicated))


class Scorer:
  """Scores samples [n, D] against a run's held-out set with the
  evaluators `eval.evaluators` names (`drift_jax.evaluators`), each where
  the data allow it (mixture metrics on exact mixtures, classifier-feature
  metrics with an evaluation classifier): the first one's values, every
  floor, then the others' values (the order metrics.jsonl has always had).

  The comparison harness scores a data row with it, so that a perfect
  sampler is measured exactly like a method.
  """

  def __init__(self, dataset, config, classifier=None, num_classes=0):
    have = {'mixture': dataset.mixture is not None,
            'classifier': classifier is not None,
            'images': dataset.image_shape is not None}
    self._scorers = []
    for name in config.eval.get('evaluators', evaluators.DEFAULT):
      entry = evaluators.EVALUATORS[name]
      if all(have[need] for need in entry.needs):
        self._scorers.append(entry.make(dataset, config,
                                        classifier=classifier,
                                        num_classes=num_classes))
    self.floors = {}
    for scorer in self._scorers:
      self.floors.update(scorer.floors)

  def __call__(self, samples) -> dict:
    result = {'eval/num_samples': len(samples)}
    if not np.all(np.isfinite(samples)):
      result['eval/energy_distance'] = float('nan')
      return result
    first, *rest = self._scorers
    result.update(first(samples))
    result.update(self.floors)
    for scorer in rest:
      result.update(scorer(samples))
    return result


class _Evaluator:
  """Draws as many samples as the held-out set has and scores them; or,
  for a method that does not generate, its own `evaluate`."""

  def __init__(self, method, dataset, config, constants, mesh,
               classifier=None, num_classes=0):
    self._constants = constants
    self._evaluate = method.evaluate
    if self._evaluate is not None:
      return
    self._n = dataset.held_out.shape[0]
    self._key = evaluation_key(config.seed)
    self._sample = jax.jit(method.sample, static_argnums=3,
                           out_shardings=parallel.replicated(mesh))
    # A latent-space run's samples are decoded and scored in pixels.
    self._decode = dataset.decode
    self.scorer = Scorer(scored_data(dataset), config, classifier,
                         num_classes)

  def __call__(self, state):
    """(eval metrics, samples [n, D] or None; pixels for a latent-space
    run)."""
    if self._evaluate is not None:
      return self._evaluate(state, self._constants), None
    samples = latent_lib.to_pixels(self._decode, np.asarray(
        self._sample(state, self._constants, self._key, self._n)))
    return self.scorer(samples), samples


def scored_data(dataset):
  """The data samples are scored and plotted against: the pixels of a
  latent-space run's data, else the data itself."""
  return dataset if dataset.pixels is None else dataset.pixels


def make_scorer(config, workdir: str) -> Scorer:
  """The `Scorer` a run of `config` evaluates with (its dataset, floors
  and, for labelled images, the evaluation classifier, trained into
  `workdir` if `eval.classifier='train'`)."""
  config = methods.finalize(config)
  dataset = data_lib.for_run(config)
  num_classes = _num_classes(config, dataset)
  return Scorer(dataset, config,
                _eval_classifier(config, workdir, dataset, num_classes),
                num_classes)


# -------------------------------------------------------------------- loop


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains `config.method`, evaluating and checkpointing into `workdir`.

  Resumes from the newest checkpoint in `workdir/checkpoints` that
  restores (`checkpoint.restore_latest`), after checking that the config
  matches the one the checkpoints were written with
  (`guards.check_resume_config`). The method's prerequisites (a teacher,
  an encoder) are trained or loaded first (`prerequisites`). SIGTERM or
  SIGINT saves a checkpoint at the current step and raises
  `preemption.Preempted`; one process at a time may use `workdir`
  (`workdir.lock`). Returns a summary: the final record (step, train and
  eval metrics), budget (steps and wall seconds, the prerequisites'
  included) and the number of compilations of the step.
  """
  if mirror.is_remote(workdir):
    return _train_mirrored(config, workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f'The workdir {workdir!r} is a file, not a directory.')
  os.makedirs(workdir, exist_ok=True)
  with preemption.handle_signals(), workdir_lib.lock(workdir):
    return _set_up_and_run(config, workdir)


# What a completed save calls once budget.json names it (`mirror.push` of
# a remote workdir's local copy; None for a local workdir).
_AFTER_SAVE = contextvars.ContextVar('after_save', default=None)


def _train_mirrored(config, remote: str) -> dict:
  """A remote workdir (`mirror`): trains in its local copy, pulled first
  and pushed after every recorded save and when the run ends, however it
  ends (a failed final push is one warning, never the run's error)."""
  if jax.process_count() > 1:
    raise ValueError(f'The workdir {remote!r} is remote; a multi-process '
                     'run writes its checkpoint shards from every host and '
                     'needs a workdir every host shares.')
  local = mirror.local_dir(remote)
  mirror.pull(remote, local)
  token = _AFTER_SAVE.set(lambda: mirror.push(local, remote))
  try:
    return train_and_evaluate(config, local)
  finally:
    _AFTER_SAVE.reset(token)
    try:
      mirror.push(local, remote)
    except OSError as error:
      print(f'warning: could not copy {local} to {remote}: {error}',
            file=sys.stderr, flush=True)


def _set_up_and_run(config, workdir: str) -> dict:
  """Config, data and resume checks before anything is written."""
  config, method, ctx, dataset, costs, changes = _prepare(config, workdir)
  return _run(config, workdir, method, ctx, dataset, costs, changes)


def _prepare(config, workdir: str):
  """The finalised config, the method, its run context (with the resolved
  prerequisites, trained into `workdir` if they must be), the dataset,
  what the prerequisites cost (`prerequisites.cost_metrics`) and the
  config changes since the checkpoints in `workdir`."""
  config = methods.finalize(config)
  mesh = parallel.make_mesh(config.mesh.num_devices, config.mesh.fsdp)
  methods.validate(config, mesh.devices.size)
  module = methods.get(config.method)
  dataset = data_lib.for_run(config)
  num_classes = _num_classes(config, dataset)
  requests = {name: prerequisites_lib.with_run_config(request, config)
              for name, request in module.prerequisites(config).items()}
  latent = prerequisites_lib.latent_request(config)
  prerequisites_lib.validate_runs(
      [*requests.values(), latent,
       prerequisites_lib.eval_classifier(config, dataset)],
      mesh.devices.size)
  changes = guards.check_resume_config(workdir, config.to_dict(),
                                       methods.renamed_keys())
  if not changes:  # an accepted change is written once it has restored
    workdir_lib.write_json(os.path.join(workdir, CONFIG_FILE),
                           config.to_dict())
  dataset, requests, resolved = resolve_prerequisites(
      config, workdir, dataset, requests, latent, num_classes)
  ctx = RunContext(dim=dataset.dim, mesh=mesh,
                   image_shape=dataset.image_shape, num_classes=num_classes,
                   prerequisites=resolved, data=dataset)
  return (config, module.make(config, ctx), ctx, dataset,
          prerequisites_lib.cost_metrics(requests, resolved), changes)


def resolve_prerequisites(config, workdir, dataset, requests, latent,
                          num_classes, train_run=None):
  """(the data the run trains on, every request, the resolved
  prerequisites): the latent space first, when there is one, since the
  run's data become its latents and a teacher trains in them. `train_run`
  trains a missing one (default `train_and_evaluate`; `load_generator`
  passes one that refuses)."""
  resolve = functools.partial(
      prerequisites_lib.resolve, workdir=workdir, config=config,
      num_classes=num_classes, train_run=train_run or train_and_evaluate)
  resolved = {}
  if latent is not None:
    resolved['latent'] = resolve(latent, dataset=dataset)
    dataset = latent_lib.latent_dataset(dataset, resolved['latent'])
    folder = os.path.join(workdir, workdir_lib.AUTOENCODER_DIR)
    requests = {name: prerequisites_lib.in_latent_space(request, folder)
                for name, request in requests.items()}
  resolved.update({name: resolve(request, dataset=dataset)
                   for name, request in requests.items()})
  if latent is not None:
    requests = {**requests, 'latent': latent}
  return dataset, requests, resolved


class ChainedStep(NamedTuple):
  """The runner's own chained step of a config, ready to call.

  `advance(state, step) -> (state, metrics, step + k)` runs one call of
  `make_step_fn` on the run's own batches (`data.make_batch_fn`);
  `compile(state, step)` lowers and compiles that call, for its
  `memory_analysis()` and `cost_analysis()`.
  """
  advance: Callable
  compile: Callable
  state: Any
  steps_per_call: int


def chained_step(config, workdir: str) -> ChainedStep:
  """The chained step `seconds_per_step` times, set up from `config` with
  its prerequisites resolved into `workdir` (a teacher is trained there
  first, untimed)."""
  os.makedirs(workdir, exist_ok=True)
  with workdir_lib.lock(workdir):
    config, method, ctx, dataset, _, _ = _prepare(config, workdir)
  tc = config.train
  k = tc.steps_per_call
  batches = run_batches(config, ctx, dataset)
  step_fn = make_step_fn(method, ctx.mesh, config.seed)
  constants = parallel.place_constants(method.constants, ctx.mesh)

  def advance(state, step):
    state, metrics = step_fn(state, constants, batches(step),
                             jnp.asarray(step, jnp.int32))
    return state, metrics, step + k

  def compile_call(state, step):
    return step_fn.lower(state, constants, batches(step),
                         jnp.asarray(step, jnp.int32)).compile()

  return ChainedStep(advance, compile_call,
                     init_state(method, ctx.mesh, config.seed), k)


def setup_seconds(config, workdir: str, repeats: int = 3) -> dict:
  """{'NAME_setup_seconds': warm wall seconds} of each precomputation
  `config`'s method makes before its first step (`methods.setups`): each
  made once to compile, then the fastest of `repeats`. Prerequisites are
  resolved into `workdir` first (as `seconds_per_step` does) and not
  timed."""
  if not methods.setups(config):
    return {}
  os.makedirs(workdir, exist_ok=True)
  with workdir_lib.lock(workdir):
    config, _, ctx, _, _, _ = _prepare(config, workdir)
  out = {}
  for name, make_again in methods.setup_work(config, ctx).items():
    make_again()  # compiles
    out[f'{name}_setup_seconds'] = min(
        timeit.repeat(make_again, number=1, repeat=repeats))
  return out


def seconds_per_step(config, workdir: str, *, min_seconds: float = 2.0,
                     repeats: int = 3, agreement: float | None = None,
                     max_repeats: int = 8) -> float:
  """Steady-state wall seconds of one training step of `config`: the
  runner's own chained step and batch function (`chained_step`),
  compiled and warmed up first, then timed over blocks of at least
  `min_seconds`; the median of `repeats` blocks. With `agreement`, blocks
  go on (up to `max_repeats`) until the last two agree to that fraction,
  and the fastest block counts (other work on the machine only ever slows
  a step down). Prerequisites (a teacher) are resolved into `workdir`
  first and not timed: the comparison harness calibrates a trained
  teacher as its own diffusion run. Evaluation is not part of a step.
  """
  chained = chained_step(config, workdir)
  advance, state, step = chained.advance, chained.state, 0
  for _ in range(2):  # compile, then one warm call
    state, metrics, step = advance(state, step)
  jax.block_until_ready(metrics)
  blocks = []
  while len(blocks) < repeats or (
      agreement is not None and len(blocks) < max_repeats
      and abs(blocks[-1] - blocks[-2]) > agreement * min(blocks[-2:])):
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < min_seconds:
      state, metrics, step = advance(state, step)
      jax.block_until_ready(metrics)
      calls += 1
    blocks.append((time.perf_counter() - start)
                  / (calls * chained.steps_per_call))
  return float(np.median(blocks) if agreement is None else min(blocks))


def _run(config, workdir, method, ctx, dataset, extra_costs,
         changes=()) -> dict:
  """Restores or initialises the state, trains, and always completes the
  started checkpoint and closes the manager and the metric writer."""
  constants = parallel.place_constants(method.constants, ctx.mesh)
  shapes = jax.eval_shape(method.init, _init_key(config.seed))
  abstract = checkpoint.abstract_like(
      shapes, parallel.state_shardings(shapes, ctx.mesh))
  manager = checkpoint.make_manager(os.path.join(workdir, CHECKPOINT_DIR),
                                    max_to_keep=config.train.keep_checkpoints)
  saver = guards.Checkpoints(manager, workdir, on_recorded=_AFTER_SAVE.get())
  writer = None
  try:
    start, state = checkpoint.restore_latest(manager, abstract)
    if changes:  # the changed config restored its checkpoint: keep it
      guards.keep_old_config(workdir)
      workdir_lib.write_json(os.path.join(workdir, CONFIG_FILE),
                             config.to_dict())
    if state is None:
      start = 0
      state = init_state(method, ctx.mesh, config.seed)
    reporting.truncate_metrics(workdir, start)
    writer = reporting.MetricWriter(
        workdir, start, tracker=reporting.make_tracker(config, workdir))
    if changes:
      writer.write_record(start, {'config/changed': list(changes)})
    return _train(config, workdir, method, state, start, ctx, dataset,
                  constants, saver, writer, extra_costs)
  except guards.Diverged as diverged:
    # The rejected loss is of the weights one step before it was logged
    # (of the call's last step); a checkpoint from the call's first step
    # on holds them or their successors, never to be resumed from.
    newest = saver.discard_from(diverged.step
                                - config.train.steps_per_call)
    raise FloatingPointError(f'{diverged.reason}: the run diverged and '
                             f'stops ({newest}).') from None
  finally:
    # A checkpoint already started is completed (and its budget recorded)
    # even when training failed.
    saver.flush()
    manager.close()
    if writer is not None:
      writer.close()


def _num_classes(config, dataset) -> int:
  """Classes of a class-conditional run (0 for unconditional runs)."""
  if not config.conditional.enabled:
    return 0
  num_classes = dataset.num_classes
  if num_classes < 2:
    raise ValueError(f'`conditional.enabled` needs labelled data; '
                     f'{dataset.name!r} has {num_classes} classes.')
  for name in ('batch_size', 'gen_batch_size'):
    size = config.train[name]
    if size % num_classes:
      raise ValueError(f'`train.{name}` = {size} must be a multiple of the '
                       f'number of classes ({num_classes}).')
  if config.train.gen_batch_size // num_classes < 2:
    raise ValueError('`train.gen_batch_size` must give at least 2 '
                     'generated samples per class (one is self-masked).')
  return num_classes


def _scoring_classifier(config, workdir, method, dataset, num_classes):
  """The evaluation classifier of a run's samples (`_eval_classifier`, in
  pixels for a latent-space run); None for a method that evaluates itself
  (a pre-training run scores no samples)."""
  if method.evaluate is not None:
    return None
  return _eval_classifier(config, workdir, scored_data(dataset), num_classes)


def _eval_classifier(config, workdir, dataset, num_classes):
  """The evaluation classifier of labelled images (None otherwise, or
  with `eval.classifier='none'`), resolved like any prerequisite."""
  request = prerequisites_lib.eval_classifier(config, dataset)
  if request is None:
    return None
  return prerequisites_lib.resolve(
      request, workdir=workdir, dataset=dataset, config=config,
      num_classes=num_classes, train_run=train_and_evaluate)


def _train(config, workdir, method, state, start, ctx, dataset, constants,
           saver, writer, extra_costs):
  tc = config.train
  k = tc.steps_per_call
  if start % k:
    raise ValueError(f'Checkpoint step {start} is not a multiple of '
                     f'`train.steps_per_call` = {k}.')
  batches = run_batches(config, ctx, dataset, workdir, start)
  num_traces = [0]
  step_fn = make_step_fn(method, ctx.mesh, config.seed, num_traces)
  # The floors cost two 5,000 x 5,000 distance passes: skip them when the
  # run is already finished (a reused teacher, a re-printed quality table).
  evaluator = (_Evaluator(method, dataset, config, constants, ctx.mesh,
                          _scoring_classifier(config, workdir, method,
                                              dataset, ctx.num_classes),
                          ctx.num_classes)
               if start < tc.steps else None)
  guard = guards.DivergenceGuard(tc.divergence_factor)
  guard.replay(reporting.read_metrics(workdir), start)
  progress = _progress_bar(tc, start)
  wall0 = time.perf_counter() - saver.wall_seconds_at(start)
  record = {'step': start}
  step = start
  # This process's seconds in the first call (compiling it, mostly) and
  # in evaluations, for the summary: they are part of the wall seconds.
  timing = {'time/first_call_seconds': 0.0, 'time/eval_seconds': 0.0}
  while step < tc.steps:
    call = (functools.partial(_timed_first_call, step_fn, timing)
            if step == start else step_fn)
    state, train_metrics = call(state, constants, batches(step),
                                jnp.asarray(step, jnp.int32))
    step += k
    checkpoint.check_errors(saver.manager, saver.pending_step)  # at once
    record = _record(config, workdir, step, state, train_metrics, evaluator,
                     dataset, guard, timing)
    if record:
      _write(writer, record, step, time.perf_counter() - wall0, extra_costs)
      if progress is not None and 'train/loss' in record:
        progress.set_postfix(loss=f'{record["train/loss"]:.3g}')
    signal_name = preemption.agreed()  # the same on every process
    if step % tc.checkpoint_every == 0 or step == tc.steps or signal_name:
      _checked_save(saver, step, state, record, train_metrics, guard,
                    time.perf_counter() - wall0)
      _save_bank(workdir, step, batches, tc.keep_checkpoints)
    if signal_name:
      saver.flush()
      raise preemption.Preempted(signal_name, step, str(saver.manager
                                                        .directory))
    if progress is not None:
      progress.update(k)
  if progress is not None:
    progress.close()
  saver.flush()  # budget.json for the final checkpoint, read by _summary
  summary = _summary(workdir, step, start, record, extra_costs,
                     num_traces[0])
  summary.update(timing)
  return summary


def run_batches(config, ctx, dataset, workdir: str = '', start: int = 0):
  """The run's batches(step) (`data.make_batch_fn`); a streaming bank's
  (`data.draw='stream'`) restored to its state at `start` from
  `workdir`."""
  tc, d = config.train, config.data
  kwargs = dict(batch_size=tc.batch_size, steps_per_call=tc.steps_per_call,
                seed=config.seed, class_balanced=ctx.num_classes > 0)
  if d.draw == 'stream':
    batches = stream_lib.make_batch_fn(dataset, ctx.mesh, **kwargs,
                                       capacity=d.bank_size,
                                       push=d.bank_push)
  else:
    batches = data_lib.make_batch_fn(dataset, ctx.mesh, **kwargs,
                                     draw=d.draw)
  bank = getattr(batches, 'bank', None)
  if bank is not None and start:
    stream_lib.load(workdir, start, bank, jax.process_index())
  return batches


def _save_bank(workdir: str, step: int, batches, keep: int) -> None:
  """A streaming bank's state at `step`, beside that step's checkpoint."""
  bank = getattr(batches, 'bank', None)
  if bank is not None:
    stream_lib.save(workdir, step, bank, jax.process_index(), keep)


def _timed_first_call(step_fn, timing, *args):
  """step_fn(*args), its seconds (compiling, mostly) in `timing`."""
  began = time.perf_counter()
  state, metrics = step_fn(*args)
  jax.block_until_ready(metrics)
  timing['time/first_call_seconds'] = time.perf_counter() - began
  return state, metrics


def _write(writer, record, step, wall, extra_costs) -> None:
  """The record with its wall and charged seconds to the writer (which
  adds an evaluation's sample grid)."""
  record.update({'time/wall_seconds': wall,
                 'time/total_wall_seconds':
                     wall + prerequisites_lib.seconds_paid(extra_costs),
                 **extra_costs})
  writer.write(step, record)


def _checked_save(saver, step, state, record, train_metrics, guard,
                  wall) -> None:
  """Saves `step`. A step saved but not logged has its loss checked first,
  like a logged one but kept out of the guard's running median (so the
  logged trajectory decides the median, whatever the save interval)."""
  if 'train/loss' not in record:
    guard.check(step, float(jax.device_get(train_metrics['train/loss'])),
                record=False)
  saver.save(step, state, wall)


def _record(config, workdir, step, state, train_metrics, evaluator,
            dataset, guard, timing) -> dict:
  """The train metrics at logging steps and the evaluation at eval steps
  (also plotted and saved as samples.npy); {} otherwise. A non-finite
  loss, or one the divergence guard rejects, stops the run."""
  tc, record = config.train, {}
  if step % tc.log_every == 0 or step == tc.steps:
    record.update({k: float(v) for k, v in
                   jax.device_get(train_metrics).items()})
    guard.check(step, record['train/loss'])
  if step % tc.eval_every == 0 or step == tc.steps:
    began = time.perf_counter()
    eval_metrics, samples = evaluator(state)
    timing['time/eval_seconds'] += time.perf_counter() - began
    record.update(eval_metrics)
    if samples is not None:
      _plot(config, workdir, samples, scored_data(dataset), step,
            eval_metrics)
      if reporting.is_writer():  # the newest samples, for sweep plots
        np.save(os.path.join(workdir, SAMPLES_FILE), samples)
  return record


def _summary(workdir, step, start, record, extra_costs, num_compiles):
  if step == start:  # already finished: report the last record written
    records = [r for r in reporting.read_metrics(workdir)
               if 'config/changed' not in r]
    record = records[-1] if records else {}
  final = {'step': step, **record}
  final['time/wall_seconds'] = read_budget(workdir)['wall_seconds']
  final.update(extra_costs)
  final['num_compiles'] = num_compiles
  return final


def _progress_bar(train_config, start):
  if not (train_config.progress and reporting.is_writer()):
    return None
  from tqdm import tqdm
  return tqdm(total=train_config.steps, initial=start, unit='step',
              dynamic_ncols=True)


def _plot(config, workdir, samples, dataset, step, eval_metrics):
  """The samples' picture; a failure (disk full, a backend problem) is a
  warning, not the end of the run."""
  if not config.eval.plot:
    return
  try:
    _plot_samples(config, workdir, samples, dataset, step, eval_metrics)
  except Exception as error:  # noqa: BLE001
    logging.warning('Plotting the samples at step %d failed (%s); the run '
                    'goes on.', step, error)


def _plot_samples(config, workdir, samples, dataset, step, eval_metrics):
  path = reporting.plot_path(workdir, step)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  label, _, ratio = reporting.headline_metric(eval_metrics)
  title = (f'{config.method} on {dataset.name}, step {step}: {label} '
           f'{ratio:.2f}x floor')
  if dataset.image_shape is not None:
    conditional = config.conditional.enabled and dataset.num_classes > 1
    reporting.plot_image_grid(
        path, samples, dataset.image_shape, title,
        num_classes=dataset.num_classes if conditional else 0,
        real=dataset.held_out, real_labels=dataset.held_out_labels)
  else:
    reporting.plot_samples(path, samples, dataset.held_out, title)
  if reporting.is_writer():
    shutil.copyfile(path, os.path.join(workdir, 'samples.png'))
