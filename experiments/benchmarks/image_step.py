r"""The device check's image step: the DiT generator drifting on
Fashion-MNIST pixels, in float32 and with bfloat16 compute, through the
runner's own chained step (`runner.chained_step`).

For each compute dtype (`precision.compute`, the networks' policy:
parameters, EMA and Adam state stay float32) it reports steps per second,
the compiled call's memory (`memory_analysis()`: arguments +
temporaries) and FLOPs (`cost_analysis()`, hence the achieved TFLOP/s),
and the training loss
over the same chained steps from the same initial state and batches, so
the bfloat16 trajectory is read against the float32 one.

  python -m experiments.benchmarks.image_step            # GPU sizes
  python -m experiments.benchmarks.image_step --quick    # CPU smoke sizes

`device_check` prints these rows after its own.
"""

from __future__ import annotations

import tempfile
import time

import jax
import numpy as np
from absl import app
from absl import flags

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.train import runner
from experiments import cli

FLAGS = flags.FLAGS
CONFIG = 'configs/fashion_mnist.py:conditional,generator=dit,size=32'
DTYPES = ('float32', 'bfloat16')


def _define_flags():
  """Defined only when run as a script."""
  flags.DEFINE_bool('quick', False, 'CPU smoke sizes (seconds).')


def sizes(quick: bool) -> dict:
  """The GPU suite's generator (DiT-S/2 at 32 x 32, batch 256) and a few
  hundred steps; or a tiny DiT for a CPU smoke run."""
  if quick:
    return dict(dit_size='tiny', batch=20, steps=4, timed=2)
  return dict(dit_size='S/2', batch=256, steps=300, timed=100)


def image_config(dtype: str, s: dict):
  """Class-conditional drifting on 32 x 32 Fashion-MNIST pixels with a DiT
  generator computing in `dtype`; one step per call on one device (the
  device check measures one chip), no evaluation."""
  c = config_lib.load_config_file(CONFIG)
  c.mesh.num_devices = 1
  c.model.generator.dit_size = s['dit_size']
  c.precision.compute = dtype
  c.train.update(batch_size=s['batch'], gen_batch_size=s['batch'],
                 steps=s['steps'], steps_per_call=1)
  return methods.finalize(c)


def measure(dtype: str, s: dict) -> dict:
  """Steps/s, memory and FLOPs of one compiled step, and the losses of
  `s['steps']` chained steps."""
  with tempfile.TemporaryDirectory() as workdir:
    chained = runner.chained_step(image_config(dtype, s), workdir)
  compiled = chained.compile(chained.state, 0)
  memory = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  state, step, losses, start = chained.state, 0, [], 0.0
  for i in range(s['steps']):
    if i == s['steps'] - s['timed']:
      jax.block_until_ready(state)
      start = time.perf_counter()
    state, metrics, step = chained.advance(state, step)
    losses.append(metrics['train/loss'])
  jax.block_until_ready(state)
  steps_per_second = s['timed'] / (time.perf_counter() - start)
  flops = float(cost.get('flops', 0.0)) if cost else 0.0
  return dict(steps_per_second=steps_per_second,
              gib=(memory.argument_size_in_bytes
                   + memory.temp_size_in_bytes) / 2**30 if memory else None,
              tflops=flops * steps_per_second / 1e12,
              losses=np.asarray(jax.device_get(losses), np.float64))


def rows(quick: bool) -> list[str]:
  """Markdown rows in device_check's table: one per dtype, then the
  bfloat16-against-float32 loss row."""
  s = sizes(quick)
  results = {dtype: measure(dtype, s) for dtype in DTYPES}
  size = f'DiT-{s["dit_size"]}, 32x32x1, batch {s["batch"]}'
  out = []
  for dtype, r in results.items():
    gib = 'n/a' if r['gib'] is None else f'{r["gib"]:.2f} GiB'
    out.append(f'| image step, {dtype} | {size} | '
               f'{r["steps_per_second"]:.3g} steps/s, {gib}, '
               f'{r["tflops"]:.3g} TFLOP/s | | | |')
  out.append(loss_row(results['float32']['losses'],
                      results['bfloat16']['losses'], size))
  return out


def loss_row(f32, bf16, size: str) -> str:
  """bfloat16 against float32 losses from the same state and batches: the
  largest relative difference over the first 10 steps (the generator
  outputs exactly zero at initialisation, so step 1 agrees by
  construction; early steps show precision before training amplifies it)
  and the means of the last 10 % of steps (precision through training)."""
  tail, early = max(1, len(f32) // 10), min(10, len(f32))
  first = np.max(np.abs(bf16[:early] - f32[:early]) / np.abs(f32[:early]))
  late_f32, late_bf16 = f32[-tail:].mean(), bf16[-tail:].mean()
  return (f'| image loss, bf16 vs f32 | {size}, {len(f32)} steps | '
          f'steps 1-{early}: {first:.1e} relative at most; last {tail} steps: '
          f'{late_bf16:.4g} vs {late_f32:.4g} '
          f'({late_bf16 / late_f32:.3f}x) | | | |')


def main(argv):
  cli.check_no_arguments(argv)
  print('\n'.join(rows(FLAGS.quick)), flush=True)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
