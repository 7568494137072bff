"""What survives what (README): signals, divergence, a changed config, a
corrupt checkpoint, a second process, bad data. Signals and the lock are
tested on real subprocesses of `experiments.main`."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.data import datasets as data_lib
from drift_jax.encoders import classifier
from drift_jax.train import checkpoint
from drift_jax.train import guards
from drift_jax.train import preemption
from drift_jax.train import prerequisites
from drift_jax.train import reporting
from drift_jax.train import runner
from drift_jax.train import workdir as workdir_lib
from experiments import same_metrics
from tests.runner_helpers import losses
from tests.runner_helpers import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN_ARGS = ['--config', 'configs/toy2d.py:runlocal',
             '--config.train.steps=300', '--config.train.checkpoint_every=100',
             '--config.train.eval_every=150', '--config.train.log_every=10',
             '--config.eval.plot=False']


def _main(workdir, *extra, wait=True):
  command = [sys.executable, '-m', 'experiments.main', *MAIN_ARGS, *extra,
             '--workdir', str(workdir)]
  env = dict(os.environ, JAX_NUM_CPU_DEVICES='1')
  if wait:
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
  return subprocess.Popen(command, cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_records(workdir, count, process, timeout=240):
  path = os.path.join(workdir, reporting.METRICS_FILE)
  start = time.time()
  while time.time() - start < timeout:
    assert process.poll() is None, process.communicate()
    if os.path.exists(path):
      with open(path) as f:
        if sum(1 for _ in f) >= count:
          return
    time.sleep(0.1)
  raise TimeoutError(path)


def _steps(workdir):
  return sorted(int(n) for n in os.listdir(
      os.path.join(workdir, runner.CHECKPOINT_DIR)) if n.isdigit())


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT],
                         ids=lambda s: s.name)
def test_signal_saves_at_the_step_and_resume_is_exact(tmp_path, sig):
  """A signal mid-run saves a checkpoint at the current step and exits with
  the preemption status; the rerun ends with the uninterrupted run's
  metrics.jsonl, record for record (same process type, same CPU). The
  SIGTERM case is interrupted twice more (SIGINT, SIGKILL) before it ends,
  and then compares TensorBoard with metrics.jsonl."""
  stopped = tmp_path / 'stopped'
  # No interval checkpoint before the end, so the one saved is the
  # signal's (with one at step 100, a signal that landed during that save
  # was handled at step 100, and the test could not tell them apart).
  no_interval = '--config.train.checkpoint_every=300'
  process = _main(stopped, no_interval, wait=False)
  _wait_for_records(stopped, 8, process)  # past step 80
  process.send_signal(sig)
  _, err = process.communicate(timeout=120)
  assert process.returncode == preemption.EXIT_STATUS, err
  message = [line for line in err.splitlines() if 'preempted' in line]
  assert len(message) == 1 and sig.name in message[0], err
  saved = _steps(stopped)
  # Saved at the signal, at or past step 80 and before the end.
  assert len(saved) == 1 and 80 <= saved[0] < 300, saved
  assert json.load(open(stopped / workdir_lib.BUDGET_FILE))['steps'] == (
      saved[-1])
  if sig == signal.SIGINT:
    return  # the SIGTERM case checks the resumed trajectory
  # Two more interruptions, a SIGINT and a SIGKILL, each resumed.
  for then in (signal.SIGINT, signal.SIGKILL):
    count = len(reporting.read_metrics(stopped))
    process = _main(stopped, no_interval, wait=False)
    _wait_for_records(stopped, count + 3, process)
    process.send_signal(then)
    process.communicate(timeout=120)
  assert _main(stopped, no_interval).returncode == 0
  straight = tmp_path / 'straight'
  assert _main(straight, no_interval).returncode == 0
  metrics = [os.path.join(d, reporting.METRICS_FILE)
             for d in (stopped, straight)]
  assert same_metrics.first_difference(
      *map(same_metrics.read, metrics)) is None
  # TensorBoard holds exactly metrics.jsonl's scalars, step for step.
  records = reporting.read_metrics(stopped)
  events = _tensorboard_scalars(stopped / reporting.TENSORBOARD_DIR)
  assert len(events) == len({key for key, _ in events})  # none twice
  assert dict(events) == {(r['step'], k): np.float32(v) for r in records
                          for k, v in reporting._numeric(r).items()}


def _tensorboard_scalars(directory):
  """[((step, tag), value)] of every scalar in the event files (TFRecord
  framing: length, its CRC, the Event proto, its CRC)."""
  import struct

  from tensorboardX.proto import event_pb2
  out = []
  for name in sorted(os.listdir(directory)):
    with open(os.path.join(directory, name), 'rb') as f:
      data = f.read()
    pos = 0
    while pos + 12 <= len(data):
      (length,) = struct.unpack('<Q', data[pos:pos + 8])
      event = event_pb2.Event()
      event.ParseFromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      for value in event.summary.value:
        if value.HasField('simple_value'):
          out.append(((event.step, value.tag),
                      np.float32(value.simple_value)))
  return out


def test_a_second_process_on_a_workdir_is_refused(tmp_path):
  first = _main(tmp_path, '--config.train.steps=100000', wait=False)
  try:
    _wait_for_records(tmp_path, 1, first)
    second = _main(tmp_path)
    assert second.returncode == 1
    assert f'in use by pid {first.pid}' in second.stderr
    assert 'Traceback' not in second.stderr
  finally:
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
  # The first run's records are neither duplicated nor out of order.
  steps = [r['step'] for r in reporting.read_metrics(tmp_path)]
  assert steps == sorted(set(steps))


def test_a_lock_dies_with_its_process(tmp_path):
  """The workdir lock is the OS's (filelock): a process killed while it
  holds it leaves nothing to take over (nor an old-format lock file of a
  dead pid); a held one is refused, naming its holder."""
  import socket
  holder = subprocess.Popen(
      [sys.executable, '-c',
       'import sys, time; from drift_jax.train import workdir as w\n'
       f'with w.lock({str(tmp_path)!r}):\n'
       '  print("held", flush=True); time.sleep(600)'],
      cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    with pytest.raises(RuntimeError, match=f'in use by pid {holder.pid} on '
                       f'host {socket.gethostname()}'):
      runner.train_and_evaluate(tiny_config(steps=3), str(tmp_path))
  finally:
    holder.kill()  # SIGKILL: no cleanup runs in the holder
    holder.wait(timeout=60)
  (tmp_path / workdir_lib.LOCK_FILE).write_text(json.dumps(
      {'pid': holder.pid, 'host': socket.gethostname()}))  # the old format
  with workdir_lib.lock(str(tmp_path)):
    assert json.loads((tmp_path / workdir_lib.OWNER_FILE).read_text())[
        'pid'] == os.getpid()
  assert not (tmp_path / workdir_lib.OWNER_FILE).exists()  # released
  # Held in this process (another open of the file), refused the same way.
  with workdir_lib.lock(str(tmp_path)):
    with pytest.raises(RuntimeError, match=f'in use by pid {os.getpid()}'):
      runner.train_and_evaluate(tiny_config(steps=6), str(tmp_path))


def _signal_after(monkeypatch, calls):
  """preemption.requested() reports SIGTERM from its `calls`-th call on."""
  count = [0]

  def requested():
    count[0] += 1
    return 'SIGTERM' if count[0] >= calls else None
  monkeypatch.setattr(preemption, 'requested', requested)


def test_preempted_teacher_saves_and_the_student_resumes_exactly(
    tmp_path, monkeypatch):
  def config():
    c = tiny_config(method='dmd', dataset='eight_gaussians', steps=6)
    c.dmd.update(teacher='train', teacher_steps=40)
    c.train.checkpoint_every = 3
    return c
  _signal_after(monkeypatch, 17)  # inside the teacher's 40 steps
  with pytest.raises(preemption.Preempted, match='saved step 17'):
    runner.train_and_evaluate(config(), str(tmp_path / 'stopped'))
  teacher_dir = tmp_path / 'stopped' / workdir_lib.TEACHER_DIR
  assert 17 in _steps(teacher_dir)
  monkeypatch.undo()
  runner.train_and_evaluate(config(), str(tmp_path / 'stopped'))
  runner.train_and_evaluate(config(), str(tmp_path / 'straight'))
  assert losses(teacher_dir) == losses(
      tmp_path / 'straight' / workdir_lib.TEACHER_DIR)
  assert losses(tmp_path / 'stopped') == losses(tmp_path / 'straight')


def test_preempted_classifier_resumes_to_the_same_weights(tmp_path,
                                                          monkeypatch):
  """The evaluation classifier of a digits student, preempted inside its
  own run (a run of the classifier method), resumes to the weights of an
  uninterrupted one."""
  c = tiny_config(dataset='digits')
  c.classifier.update(steps=12, batch_size=8)
  c.train.checkpoint_every = 3
  student = methods.finalize(c)
  dataset = data_lib.for_run(student)
  run = prerequisites.eval_classifier(student, dataset).run_config
  _signal_after(monkeypatch, 5)
  with pytest.raises(preemption.Preempted, match='saved step 5'):
    runner.train_and_evaluate(run, str(tmp_path / 'stopped'))
  monkeypatch.undo()
  runner.train_and_evaluate(run, str(tmp_path / 'stopped'))
  runner.train_and_evaluate(run, str(tmp_path / 'straight'))
  resumed, straight = (classifier.load(str(tmp_path / name), dataset)
                       for name in ('stopped', 'straight'))
  for a, b in zip(jax_leaves(resumed.params), jax_leaves(straight.params),
                  strict=True):
    np.testing.assert_array_equal(a, b)


def jax_leaves(tree):
  import jax
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_non_finite_weights_are_never_saved(tmp_path):
  """Logging every 100 steps, checkpointing every 25: the diverged weights
  used to fill every kept slot. The loss of an unlogged save step is
  checked first now (NaN at step 25); the weights are checked too."""
  c = tiny_config(steps=200, log_every=100, checkpoint_every=25,
                  eval_every=100)
  c.optim.lr = 1e4
  with pytest.raises(FloatingPointError,
                     match='(not finite; not saved|nan at step 25: the '
                     'run diverged).*no checkpoint yet'):
    runner.train_and_evaluate(c, str(tmp_path))
  directory = tmp_path / runner.CHECKPOINT_DIR
  assert not os.path.isdir(directory) or not _steps(tmp_path)


def test_divergence_guard():
  guard = guards.DivergenceGuard(10.0, warmup=3)
  for step, loss in enumerate([1.0, 2.0, -1.5, 9.0]):
    guard.check(step, loss)  # median 1.5: 9 < 15
  with pytest.raises(guards.Diverged, match='at step 5 .* median 1.75') as e:
    guard.check(5, 200.0)
  assert e.value.step == 5
  with pytest.raises(guards.Diverged, match='train/loss is nan at step 6'):
    guard.check(6, float('nan'))
  off = guards.DivergenceGuard(0.0)
  for step, loss in enumerate([1.0] * 10 + [1e30]):
    off.check(step, loss)


def test_the_default_divergence_guard_stops_a_resumed_run_before_a_save(
    tmp_path):
  """The README toy trained 12 steps logging three losses (as 300 steps
  at the default log_every=100 do), then continued at lr 1e4 with the
  default guard: its history is replayed from metrics.jsonl (a fresh one
  would still be warming up), and step 14, saved but not logged
  (checkpoint_every 1, log_every 4), is checked before its save. Its loss,
  of the weights of step 13 (the first update at lr 1e4), is ~1e24 while
  still finite: the checkpoint of step 13 is moved aside as diverged, and
  budget.json names step 12 again."""
  c = config_lib.load_config_file('configs/toy2d.py:runlocal')
  c.train.update(steps=12, log_every=4, checkpoint_every=4)
  c.eval.plot = False
  assert c.train.divergence_factor == config_lib.DEFAULT_DIVERGENCE_FACTOR
  runner.train_and_evaluate(c, str(tmp_path))
  c.train.update(steps=20, log_every=4, checkpoint_every=1,
                 allow_config_change=True)
  c.optim.lr = 1e4
  with pytest.raises(FloatingPointError,
                     match='at step 14 .*diverged.*checkpoint is step 12'):
    runner.train_and_evaluate(c, str(tmp_path))
  directory = tmp_path / 'checkpoints'
  assert checkpoint.saved_steps(str(directory))[-1] == 12
  assert (directory / '13.diverged').is_dir()
  assert workdir_lib.read_budget(str(tmp_path))['steps'] == 12


def test_metrics_are_strict_json(tmp_path):
  writer = reporting.MetricWriter(str(tmp_path))
  writer.write(1, {'a': float('nan'), 'b': float('inf'), 'c': 2.0})
  writer.close()
  line = (tmp_path / reporting.METRICS_FILE).read_text()

  def refuse(token):
    raise ValueError(token)
  record = json.loads(line, parse_constant=refuse)  # no bare NaN / Infinity
  assert record == {'step': 1, 'a': 'nan', 'b': 'inf', 'c': 2.0}
  back = reporting.read_metrics(str(tmp_path))[0]
  assert np.isnan(back['a']) and back['b'] == float('inf')


def test_changed_config_is_refused_before_anything_is_written(tmp_path):
  workdir = str(tmp_path)
  runner.train_and_evaluate(tiny_config(steps=3), workdir)
  before = (tmp_path / runner.CONFIG_FILE).read_text()
  for key, value in (('optim.lr', 0.5), ('data.name', 'swiss_roll'),
                     ('seed', 3), ('method', 'diffusion')):
    c = tiny_config(steps=6)
    section, _, name = key.rpartition('.')
    (c[section] if section else c)[name] = value
    with pytest.raises(guards.ConfigChanged, match=key.replace('.', r'\.')):
      runner.train_and_evaluate(c, workdir)
    assert (tmp_path / runner.CONFIG_FILE).read_text() == before
  # Free keys (train.steps) extend the run.
  assert runner.train_and_evaluate(tiny_config(steps=6), workdir)['step'] == 6


def test_allowed_config_change_keeps_the_old_config(tmp_path):
  workdir = str(tmp_path)
  runner.train_and_evaluate(tiny_config(steps=3), workdir)
  c = tiny_config(steps=6, allow_config_change=True)
  c.optim.lr = 2e-3
  runner.train_and_evaluate(c, workdir)
  kept = [n for n in os.listdir(workdir) if n.startswith('config.before')]
  assert len(kept) == 1
  assert json.load(open(tmp_path / kept[0]))['optim']['lr'] == 1e-3
  notes = [r for r in reporting.read_metrics(workdir)
           if 'config/changed' in r]
  assert notes and 'optim.lr' in notes[0]['config/changed'][0]
  # A structural change is named, not an orbax traceback.
  c = tiny_config(steps=9, allow_config_change=True)
  c.model.generator.width = 48
  saved = open(tmp_path / runner.CONFIG_FILE).read()
  with pytest.raises(checkpoint.CheckpointMismatch,
                     match='does not match this config'):
    runner.train_and_evaluate(c, workdir)
  # The refused change wrote nothing: the run's own command still resumes.
  assert open(tmp_path / runner.CONFIG_FILE).read() == saved
  assert len([n for n in os.listdir(workdir)
              if n.startswith('config.before')]) == 1
  c = tiny_config(steps=9)
  c.optim.lr = 2e-3
  assert runner.train_and_evaluate(c, workdir)['step'] == 9


def test_absurd_values_are_refused_before_anything_is_written(tmp_path):
  for key, value, match in (
      ('seed', -1, '`seed` must be an int >= 0'),
      ('optim.grad_clip', -1.0, '`optim.grad_clip` must be >= 0'),
      ('data.held_out_fraction', 0.0, '`data.held_out_fraction` must be'),
      ('data.held_out_fraction', 1.5, '`data.held_out_fraction` must be'),
      ('data.max_points', 5, 'leaves 1 held-out points'),
      ('eval.num_samples', 10**9, '`eval.num_samples` must be <= 100,000'),
      ('eval.floor_draws', 10**6, '`eval.floor_draws` must be <= 100'),
      ('model.generator.noise_dim', 10**7, 'noise_dim` must be in'),
      ('model.generator.width', 0, '`model.generator.width` must be >= 1')):
    c = tiny_config(steps=2)
    config_lib.set_by_path(c, key, value)
    workdir = tmp_path / key
    with pytest.raises(ValueError, match=match):
      runner.train_and_evaluate(c, str(workdir))
    assert not (workdir / runner.CONFIG_FILE).exists(), key
  afile = tmp_path / 'a_file'
  afile.write_text('x')
  with pytest.raises(ValueError, match='is a file, not a directory'):
    runner.train_and_evaluate(tiny_config(steps=2), str(afile))


def _corrupt(step_dir, how):
  files = [os.path.join(d, f) for d, _, names in os.walk(step_dir)
           for f in names]
  if how == 'missing_metadata':
    os.remove(os.path.join(step_dir, 'default', '_METADATA'))
  elif how == 'emptied':
    for f in files:
      os.remove(f)
  else:
    for f in files:
      if f'{os.sep}d{os.sep}' not in f:
        continue
      data = bytearray(open(f, 'rb').read())
      if how == 'truncated':
        data = data[:10]
      else:  # flipped bytes
        for i in range(len(data) // 4, len(data) // 4 + 64):
          data[i] ^= 0xFF
      open(f, 'wb').write(bytes(data))


@pytest.mark.parametrize('how', ['missing_metadata', 'emptied', 'truncated',
                                 'flipped'])
def test_corrupt_newest_checkpoint_falls_back(tmp_path, how):
  workdir = str(tmp_path)
  runner.train_and_evaluate(tiny_config(steps=6), workdir)  # saves 3 and 6
  _corrupt(os.path.join(workdir, runner.CHECKPOINT_DIR, '6'), how)
  summary = runner.train_and_evaluate(tiny_config(steps=9), workdir)
  assert summary['step'] == 9
  names = os.listdir(os.path.join(workdir, runner.CHECKPOINT_DIR))
  assert '6.corrupt' in names
  # The run went on from step 3: metrics record steps 1..9 once each.
  assert [r['step'] for r in reporting.read_metrics(workdir)] == list(
      range(1, 10))


def test_no_restorable_checkpoint_names_what_was_tried(tmp_path):
  workdir = str(tmp_path)
  runner.train_and_evaluate(tiny_config(steps=6), workdir)
  for step in ('3', '6'):
    _corrupt(os.path.join(workdir, runner.CHECKPOINT_DIR, step), 'emptied')
  with pytest.raises(RuntimeError, match=r'tried steps \[6, 3\]'):
    runner.train_and_evaluate(tiny_config(steps=9), workdir)


def test_failed_plot_is_a_warning(tmp_path, monkeypatch):
  def broken(*args, **kwargs):
    raise OSError('No space left on device')
  monkeypatch.setattr(reporting, 'plot_samples', broken)
  c = tiny_config(steps=3)
  c.eval.plot = True
  assert runner.train_and_evaluate(c, str(tmp_path))['step'] == 3


def test_failed_asynchronous_save_is_one_paragraph(tmp_path):
  class Manager:
    directory = str(tmp_path)

    def check_for_errors(self):
      raise RuntimeError('RESOURCE_EXHAUSTED: out of disk\n' + 'frame\n' * 500)
  with pytest.raises(OSError) as error:
    checkpoint.check_errors(Manager(), step=40)
  message = str(error.value)
  assert '\n' not in message and 'RESOURCE_EXHAUSTED' in message
  assert error.value.__cause__ is None
  assert 'the checkpoint of step 40' in message and ' MiB free there' in message


def test_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
  """What else a full disk brings, quieted to the one paragraph above
  (measured on a 600 KB tmpfs: 330 lines before, 1 after): orbax's
  worker threads' error records, 'Event loop is closed' from callbacks
  into the failed save's loop, a TensorBoard warning every step, and a
  digest or budget.json that no longer fits (reported as the save's)."""
  import logging as std_logging

  from absl import logging as absl_logging

  from experiments import cli

  logger = absl_logging.get_absl_logger()
  checkpoint.quiet_worker_errors()
  try:
    def record(path, level):
      return logger.makeRecord('absl', level, path, 1, 'failed', (), None)
    orbax_path = os.path.join('site-packages', 'orbax', 'checkpoint', 'f.py')
    assert not logger.filter(record(orbax_path, std_logging.ERROR))
    assert logger.filter(record(orbax_path, std_logging.INFO))
    assert logger.filter(record(os.path.join('drift_jax', 'x.py'),
                                std_logging.ERROR))
  finally:
    checkpoint.quiet_worker_errors(False)  # --traceback keeps them
  assert logger.filter(record(orbax_path, std_logging.ERROR))

  class Unraisable:
    exc_value, exc_type, exc_traceback = RuntimeError('Event loop is '
                                                      'closed'), None, None
    err_msg, object = None, None
  seen = []
  monkeypatch.setattr(sys, '__unraisablehook__', seen.append)
  cli._quiet_closed_loops(Unraisable())
  other = Unraisable()
  other.exc_value = RuntimeError('something else')
  cli._quiet_closed_loops(other)
  assert seen == [other]

  writer = reporting.MetricWriter(str(tmp_path / 'tb'))
  monkeypatch.setattr(writer._tb, 'add_scalar', _raise_disk_full)
  warnings = []
  monkeypatch.setattr(reporting.logging, 'warning',
                      lambda *args: warnings.append(args))
  for step in range(3):
    writer.write(step, {'x': 1.0})
  assert len(warnings) == 1
  assert len(reporting.read_metrics(str(tmp_path / 'tb'))) == 3

  class Manager:
    directory = str(tmp_path)

    def wait_until_finished(self):
      pass

    def all_steps(self):
      return [7]
  saves = guards.Checkpoints(Manager(), str(tmp_path))
  saves._pending = (7, 1.0, {'a': 'digest'})
  monkeypatch.setattr(guards.workdir_lib, 'write_json', _raise_disk_full)
  with pytest.raises(OSError, match='the checkpoint of step 7 .* MiB free'):
    saves.flush()


def _raise_disk_full(*args, **kwargs):
  raise OSError(28, 'No space left on device')


def test_resume_rebuilds_tensorboard_from_the_metrics(tmp_path):
  """A writer opening a workdir rebuilds TensorBoard from metrics.jsonl:
  the points a killed process logged past the checkpoint it resumes from
  are gone, those it never flushed are back."""
  writer = reporting.MetricWriter(str(tmp_path))
  writer.write(2, {'x': 1.0})
  writer.write(5, {'x': 9.0})  # logged, then the process is killed
  writer.close()
  reporting.truncate_metrics(str(tmp_path), 3)  # resumed at step 3
  writer = reporting.MetricWriter(str(tmp_path), start=3)
  writer.write(4, {'x': 2.0})
  writer.close()
  assert _tensorboard_scalars(tmp_path / reporting.TENSORBOARD_DIR) == [
      ((2, 'x'), np.float32(1.0)), ((4, 'x'), np.float32(2.0))]


def _npy(tmp_path, name, writer):
  path = tmp_path / name
  writer(path)
  return str(path)


@pytest.mark.parametrize('case, match', [
    ('empty', 'is empty'),
    ('text', 'is not a .npy file'),
    ('pickled', 'pickled'),
    ('shape', r'must be \[N, D\]'),
    ('few', 'has 3 points'),
    ('constant', 'is constant'),
])
def test_bad_data_files_fail_before_anything_is_written(tmp_path, case,
                                                        match):
  writers = {
      'empty': lambda p: p.write_bytes(b''),
      'text': lambda p: p.write_text('1,2\n3,4\n'),
      'pickled': lambda p: np.save(p, np.array([{'a': 1}] * 20),
                                   allow_pickle=True),
      'shape': lambda p: np.save(p, np.zeros(50)),
      'few': lambda p: np.save(p, np.eye(3)),
      'constant': lambda p: np.save(p, np.ones((50, 2))),
  }
  c = tiny_config(dataset='file', steps=3)
  c.data.path = _npy(tmp_path, 'cloud.npy', writers[case])
  workdir = tmp_path / 'run'
  with pytest.raises(ValueError, match=match) as error:
    runner.train_and_evaluate(c, str(workdir))
  assert 'cloud.npy' in str(error.value)
  assert not (workdir / runner.CONFIG_FILE).exists()


def test_large_file_is_subsampled(tmp_path):
  c = tiny_config(dataset='file', steps=3)
  np.save(tmp_path / 'cloud.npy',
          np.random.default_rng(0).normal(size=(3000, 2)).astype(np.float32))
  c.data.path = str(tmp_path / 'cloud.npy')
  c.data.max_points = 1000
  summary = runner.train_and_evaluate(c, str(tmp_path / 'run'))
  assert summary['eval/num_samples'] == 200  # 20% of the 1,000 kept


@pytest.mark.parametrize('key, value, dataset', [
    ('optim.lr', -1e-3, 'checkerboard'),
    # The evaluation classifier's run is checked with the student's.
    ('classifier.lr', 0.0, 'digits'),
    ('train.divergence_factor', 0.5, 'checkerboard')])
def test_bad_values_name_the_key(tmp_path, key, value, dataset):
  c = tiny_config(steps=3, dataset=dataset)
  section, name = key.split('.')
  c[section][name] = value
  with pytest.raises(ValueError, match=key.replace('.', r'\.')):
    runner.train_and_evaluate(c, str(tmp_path))
  assert not (tmp_path / runner.CONFIG_FILE).exists()


def test_keys_added_to_the_schema_since_are_not_changes():
  saved = {'optim': {'lr': 1e-3}, 'train': {'steps': 10}}
  current = {'optim': {'lr': 1e-3, 'new_knob': 2},
             'train': {'steps': 20, 'log_every': 5}}
  assert workdir_lib.config_changes(saved, current) == []
  current['optim']['lr'] = 2e-3
  assert workdir_lib.config_changes(saved, current) == [
      'optim.lr: 0.001 -> 0.002']


def test_an_unfinished_teacher_is_refused_by_name(tmp_path):
  """A diffusion run stopped at step 3 of its 6 (its config.json says 6,
  its budget 3: what a preempted teacher leaves) is refused as
  `dmd.teacher=DIR` with one line naming both, unless the student says
  `train.allow_unfinished`; the student's metrics record its steps."""
  teacher = str(tmp_path / 'teacher')
  runner.train_and_evaluate(tiny_config('diffusion', 'two_moons', steps=3),
                            teacher)
  path = os.path.join(teacher, workdir_lib.CONFIG_FILE)
  with open(path) as f:
    saved = json.load(f)
  saved['train']['steps'] = 6
  workdir_lib.write_json(path, saved)
  student = tiny_config('dmd', 'two_moons', steps=2)
  student.dmd.teacher = teacher
  with pytest.raises(ValueError, match=r'is unfinished \(step 3 of its '
                     r'train.steps=6\)'):
    runner.train_and_evaluate(student, str(tmp_path / 'student'))
  student.train.allow_unfinished = True
  summary = runner.train_and_evaluate(student, str(tmp_path / 'student'))
  assert summary['budget/teacher_steps'] == 3


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path,
                                                       monkeypatch):
  """A write that fails midway (here: the disk is full at fsync) raises
  and removes its temporary file; the harness's reader skips temporary
  files that a killed writer left."""
  path = str(tmp_path / 'final_seed1.json')

  def disk_full(fd):
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(os, 'fsync', disk_full)
  with pytest.raises(OSError, match='No space left'):
    workdir_lib.write_json(path, {'phase': 'final', 'seed': 1})
  assert os.listdir(tmp_path) == []
  monkeypatch.undo()
  from drift_jax.studies import store
  folder = tmp_path / 'results' / 'task' / 'method'
  folder.mkdir(parents=True)
  store.write_json(str(folder / 'final_seed1.json'),
                   {'phase': 'final', 'point': 0, 'seed': 1, 'status': 'ok',
                    'split': 'test', 'final': {}})
  (folder / 'final_seed2.json.tmp.123').write_text('{"pha')  # killed
  suite = {'results': str(tmp_path / 'results'), 'name': 'x'}
  cell = store.stored_cell(suite, {'name': 'task'}, {'name': 'method'})
  assert [r['seed'] for r in cell['final']] == [1]
