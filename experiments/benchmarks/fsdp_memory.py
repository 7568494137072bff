r"""Per-device memory of the training state on each ('data', 'fsdp') mesh.

  JAX_NUM_CPU_DEVICES=8 python -m experiments.benchmarks.fsdp_memory \
      [--dit_size B/2] [--per_device_batch 4]

Compiles the runner's chained drifting step (`runner.make_step_fn`) for a
DiT generator on SD-VAE-sized latents (32 x 32 x 4) from shapes alone, on
every mesh shape of the visible devices, and prints XLA's per-device
memory analysis of the compiled program: its arguments (the state, whose
parameters, EMA and Adam moments `parallel.state_shardings` splits along
'fsdp', plus the batch) and its temporaries, with the ratio of each to the
replicated mesh (fsdp = 1) compiled in the same process. Nothing runs, so
a model too large for one device is measured all the same.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from absl import app
from absl import flags

from experiments import cli

FLAGS = flags.FLAGS
LATENT_SHAPE = (32, 32, 4)


def _define_flags():
  flags.DEFINE_string('dit_size', 'B/2', 'DiT size (`dit.SIZES`).')
  flags.DEFINE_integer('per_device_batch', 4, 'Generated (and data) '
                       'samples per device.')


def _method(mesh, size: str, batch: int):
  from drift_jax import methods
  from drift_jax.config import config_lib
  from drift_jax.methods import drifting
  from drift_jax.methods.context import RunContext
  c = config_lib.load_config_file(
      'configs/fashion_mnist.py:generator=dit,size=32')
  c.model.generator.dit_size = size
  c.model.generator.noise_dim = (math.prod(LATENT_SHAPE)
                                 + c.model.generator.dit_style_tokens)
  c.train.update(batch_size=batch, gen_batch_size=batch)
  return drifting.make(methods.finalize(c), RunContext(
      dim=math.prod(LATENT_SHAPE), mesh=mesh, image_shape=LATENT_SHAPE))


def compiled_memory(fsdp: int, size: str, per_device_batch: int) -> dict:
  """Per-device bytes of the compiled chained step on a (devices // fsdp,
  fsdp) mesh: 'state' (the state's own shards), 'arguments' and 'temp'
  (XLA's `memory_analysis()`)."""
  from drift_jax.parallel import sharding as parallel
  from drift_jax.train import runner
  mesh = parallel.make_mesh(-1, fsdp=fsdp)
  batch = per_device_batch * mesh.devices.size
  method = _method(mesh, size, batch)
  shardings = runner.state_shardings(method, mesh, 0)
  abstract = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
      jax.eval_shape(method.init, jax.random.key(0)), shardings)
  state_bytes = sum(
      math.prod(s.shard_shape(a.shape)) * a.dtype.itemsize
      for a, s in zip(jax.tree.leaves(abstract), jax.tree.leaves(shardings),
                      strict=True))
  batches = jax.ShapeDtypeStruct(
      (1, batch, math.prod(LATENT_SHAPE)), jnp.float32,
      sharding=parallel.batch_sharding(mesh, leading_axes=1))
  compiled = runner.make_step_fn(method, mesh, 0).lower(
      abstract, method.constants, batches,
      jnp.asarray(0, jnp.int32)).compile()
  memory = compiled.memory_analysis()
  return {'state': state_bytes, 'arguments': memory.argument_size_in_bytes,
          'temp': memory.temp_size_in_bytes}


def main(argv):
  cli.check_no_arguments(argv)
  devices = jax.device_count()
  sizes = [f for f in range(1, devices + 1) if devices % f == 0]
  print(f'Chained drifting step, DiT-{FLAGS.dit_size} on '
        f'{"x".join(map(str, LATENT_SHAPE))} latents, '
        f'{FLAGS.per_device_batch} samples a device, {devices} '
        f'{jax.devices()[0].platform} devices; per-device MiB (ratio to '
        'fsdp = 1):\n')
  print('| mesh (data, fsdp) | state | arguments | temporaries |')
  print('|---|---|---|---|')
  base = None
  for fsdp in sizes:
    row = compiled_memory(fsdp, FLAGS.dit_size, FLAGS.per_device_batch)
    base = base or row
    cells = ' | '.join(f'{row[k] / 2**20:,.1f} ({row[k] / base[k]:.3f}x)'
                       for k in ('state', 'arguments', 'temp'))
    print(f'| ({devices // fsdp}, {fsdp}) | {cells} |', flush=True)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
