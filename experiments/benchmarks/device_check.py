r"""One command for an accelerator: speed and precision against the authors'
dense algorithm, measured in the same process, printed as one markdown table
for BENCHMARKS.md.

  python -m experiments.benchmarks.device_check            # on a GPU/TPU
  python -m experiments.benchmarks.device_check --quick    # CPU smoke sizes

Rows (sizes shrink with --quick, which the tests run on a CPU):
  main job   the demo recipe on the checkerboard (the README's main job
             until the leaderboard, kept so device results stay comparable)
             as a subprocess: total wall time and the run's own training
             time (`time: ... s wall` in its summary).
  gradient   the drifting-loss gradient at the toy size (N = M = 2048,
             D = 2, three normalised temperatures).
  step       chained training steps per second, the runner's step vs the
             same generator and optimiser around the authors' field
             (`train_step`), at the toy size and at N = M = 8192.
  error      the field at default settings (float32) against a float64
             evaluation of the same field, relative max-abs; the authors'
             field against its own float64 evaluation beside it.
  sweep      field time against N = M and D, our automatic blocks vs the
             authors' dense field (cells that do not fit say so).
  65k        N = M = 65,536, D = 64: wall time including compilation.
  image      the DiT generator drifting on 32x32 Fashion-MNIST pixels in
             float32 and bfloat16 compute: steps/s, compiled memory and
             FLOPs, and bfloat16 against float32 loss over a few hundred
             steps (`image_step`; needs the Fashion-MNIST package).
Targets (issue "Correct and fast on accelerators"): step >= 1x at the toy
size and >= 2x at N = M >= 8192 on a GPU; field error <= 1e-5.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app
from absl import flags

from drift_jax import fields
from drift_jax.theory import losses
from experiments import cli
from experiments.benchmarks import baseline
from experiments.benchmarks import image_step
from experiments.benchmarks import train_step

FLAGS = flags.FLAGS
TOY_TEMPS = (0.02, 0.05, 0.2)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _define_flags():
  """Defined only when run as a script."""
  flags.DEFINE_bool('quick', False, 'CPU smoke sizes (seconds).')


def sizes(quick: bool) -> dict:
  if quick:
    return dict(toy=256, large_step=None, sweep=(256,), dims=(2, 16),
                big=2048, main_steps=20, step_calls=3, repeats=2)
  return dict(toy=2048, large_step=8192, sweep=(2048, 8192, 32768),
              dims=(2, 64), big=65536, main_steps=0, step_calls=100,
              repeats=10)


def _points(n, dim, seed, dtype=jnp.float32):
  return jax.random.normal(jax.random.key(seed), (n, dim), dtype)


def _median_seconds(fn, *args, repeats=10):
  """Median seconds per call after a compile-and-warm call; None if the
  call does not fit in memory."""
  try:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times.append(time.perf_counter() - start)
  except Exception as e:  # noqa: BLE001 (out of memory on the device)
    if 'RESOURCE_EXHAUSTED' in str(e) or 'Out of memory' in str(e):
      return None
    raise
  return float(np.median(times))


def _ours_field(temps, normalize):
  return jax.jit(lambda x, pos: fields.drifting_field(
      x, pos, x, temperature=temps, normalize_distances=normalize,
      normalize_drift=normalize))


def _authors_field(temps, normalize):
  def field(x, pos):
    v, scale = baseline.compute_v(x, pos, x, temps, normalize)
    return v * scale  # input coordinates, like ours
  return jax.jit(field)


def _row(check, size, ours, authors, target='', unit='ms'):
  def fmt(v):
    if v is None:
      return 'does not fit'
    return f'{v:.3g} {unit}'.strip()
  ratio = ''
  if ours and authors:
    # Speed: how many times faster ours is (time ratio authors / ours;
    # steps/s ratio ours / authors).
    ratio = f'{(authors / ours if unit == "ms" else ours / authors):.2f}x'
  return f'| {check} | {size} | {fmt(ours)} | {fmt(authors)} | {ratio} | ' \
         f'{target} |'


def summary_wall_seconds(stdout: str) -> float:
  """The run summary's wall seconds (`drift_jax.train.summary.lines`)."""
  return float(re.search(r'time: ([\d.]+) s wall', stdout).group(1))


def main_job_row(steps: int) -> str:
  """The demo recipe, the README's main job when device results were first
  taken, in a subprocess (fewer steps with --quick)."""
  with tempfile.TemporaryDirectory() as workdir:
    command = [sys.executable, '-m', 'experiments.main',
               '--config=configs/toy2d.py:recipe,dataset=checkerboard',
               f'--workdir={workdir}', '--config.train.progress=false']
    if steps:
      command += [f'--config.train.steps={steps}',
                  '--config.eval.num_samples=500']
    start = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    total = time.perf_counter() - start
  train = summary_wall_seconds(out)
  return (f'| main job | {steps or 2000} steps | {total:.1f} s total, '
          f'{train:.1f} s training | | | |')


def gradient_row(n, repeats):
  x, pos = _points(n, 2, 0), _points(n, 2, 1) * 0.5
  ours = jax.jit(jax.grad(lambda x: losses.drift_loss(
      x, fields.drifting_field(x, pos, x, temperature=TOY_TEMPS,
                               normalize_distances=True,
                               normalize_drift=True))))
  authors = jax.jit(jax.grad(lambda x: baseline.drifting_loss(
      x, pos, TOY_TEMPS)))
  return _row('gradient', f'N = M = {n}, D = 2, 3 temps',
              1e3 * _median_seconds(ours, x, repeats=repeats),
              1e3 * _median_seconds(authors, x, repeats=repeats))


def step_rows(n, calls, target):
  rows = []
  batch = _points(n, 2, 1) * 0.5
  for temps, normalize in (((0.05,), False), (TOY_TEMPS, True)):
    config = train_step.toy_config(n, temps, normalize)
    ours = train_step.steps_per_second(*train_step.ours(config, batch),
                                       calls)
    try:
      authors = train_step.steps_per_second(
          *train_step.authors(config, batch), calls)
    except Exception as e:  # noqa: BLE001
      if 'RESOURCE_EXHAUSTED' not in str(e):
        raise
      authors = None
    rows.append(_row('chained step', f'N = M = {n}, {len(temps)} temp(s)',
                     ours, authors, target, unit='steps/s'))
  return rows


def error_rows(n):
  rows = []
  x64, pos64 = (np.asarray(_points(n, 2, s), np.float64) for s in (0, 1))
  pos64 = pos64 * 0.5
  for make in (_ours_field, _authors_field):
    v32 = np.asarray(make(TOY_TEMPS, True)(jnp.asarray(x64, jnp.float32),
                                          jnp.asarray(pos64, jnp.float32)))
    with jax.enable_x64(True):
      v64 = np.asarray(make(TOY_TEMPS, True)(jnp.asarray(x64),
                                            jnp.asarray(pos64)))
    rows.append(float(np.max(np.abs(v32 - v64)) / np.max(np.abs(v64))))
  return [f'| field error vs float64 | N = M = {n}, D = 2, 3 temps, '
          f'default settings | {rows[0]:.1e} | {rows[1]:.1e} | | <= 1e-5 |']


def sweep_rows(ns, dims, repeats):
  rows = []
  for dim in dims:
    for n in ns:
      x, pos = _points(n, dim, 0), _points(n, dim, 1)
      ours = _median_seconds(_ours_field(TOY_TEMPS, True), x, pos,
                             repeats=repeats)
      authors = _median_seconds(_authors_field(TOY_TEMPS, True), x, pos,
                                repeats=repeats)
      rows.append(_row('field', f'N = M = {n}, D = {dim}, 3 temps',
                       None if ours is None else 1e3 * ours,
                       None if authors is None else 1e3 * authors))
  return rows


def big_row(n):
  x, pos = _points(n, 64, 0), _points(n, 64, 1)
  start = time.perf_counter()
  jax.block_until_ready(fields.drifting_field(x, pos, x))
  return (f'| field, compile included | N = M = {n}, D = 64, 1 temp | '
          f'{time.perf_counter() - start:.2f} s | | | |')


def table_lines(quick: bool, image: bool = True, main_job: bool = True):
  """The table's lines, each yielded as soon as it is measured (a run cut
  short by a time limit keeps the rows it printed). The tests leave out
  the image rows (they run `image_step` at its own smoke size) and the
  main job (the README command, run by the tests as a command already)."""
  s = sizes(quick)
  device = jax.devices()[0]
  yield from [f'Device: {device.device_kind} ({jax.default_backend()}), jax '
              f'{jax.__version__}{", --quick sizes" if quick else ""}.', '',
              '| check | size | ours | authors\' dense | ours vs authors | '
              'target |', '|---|---|---|---|---|---|']
  if main_job:
    yield main_job_row(s['main_steps'])
  yield gradient_row(s['toy'], s['repeats'])
  yield from step_rows(s['toy'], s['step_calls'], '>= 1x')
  if s['large_step']:  # (the CPU smoke run times the toy size only)
    yield from step_rows(s['large_step'], s['step_calls'], '>= 2x')
  yield from error_rows(s['toy'])
  yield from sweep_rows(s['sweep'], s['dims'], s['repeats'])
  yield big_row(s['big'])
  if image:
    yield from image_step.rows(quick)


def run(quick: bool, image: bool = True, main_job: bool = True) -> str:
  return '\n'.join(table_lines(quick, image, main_job))


def main(argv):
  cli.check_no_arguments(argv)
  for line in table_lines(FLAGS.quick):
    print(line, flush=True)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
