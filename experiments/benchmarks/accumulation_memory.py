r"""What gradient accumulation saves: the compiled drifting loss-and-gradient
step's temporary memory (`memory_analysis()`) against `train.microbatches`.

  python -m experiments.benchmarks.accumulation_memory

For the toy config (configs/toy2d.py: MLP 32-256x3-2, the authors' field
with three temperatures) and the digits config (configs/digits.py: the conv
generator), at a generated batch of `--batch`: temporary bytes of
`drifting.loss_and_grads` compiled for one device at each micro-batch
count, and their ratio to the undivided step's, in one process. Nothing
runs: the programs are compiled from shapes alone.
"""

import functools

import jax
from absl import app
from absl import flags

flags.DEFINE_integer('batch', 4096, 'Generated (and data) batch size.')
flags.DEFINE_list('microbatches', ['1', '4', '16'], 'Micro-batch counts; '
                  'the first is the baseline of the ratios.')
FLAGS = flags.FLAGS

CONFIGS = (('toy (MLP 32-256x3-2)', 'configs/toy2d.py', 2, None),
           ('digits (conv generator, 8x8)', 'configs/digits.py', 64,
            (8, 8, 1)))


def temp_bytes(config_spec: str, dim: int, image_shape, batch: int,
               microbatches: int) -> int:
  """Temporary bytes of the compiled drifting loss-and-gradient step."""
  from drift_jax import methods
  from drift_jax.config import config_lib
  from drift_jax.methods import drifting
  from drift_jax.methods.context import RunContext
  from drift_jax.parallel import sharding as parallel
  config = methods.finalize(config_lib.load_config_file(config_spec))
  config.train.update(gen_batch_size=batch, batch_size=batch,
                      microbatches=microbatches)
  spec = drifting.make_spec(config, RunContext(
      dim=dim, mesh=parallel.make_mesh(1), image_shape=image_shape))
  params = jax.eval_shape(lambda: drifting.init(spec, jax.random.key(0)))[
      'gen']['params']
  noise = jax.ShapeDtypeStruct((batch, config.model.generator.noise_dim),
                               'float32')
  data = jax.ShapeDtypeStruct((batch, dim), 'float32')
  compiled = jax.jit(functools.partial(drifting.loss_and_grads, spec)).lower(
      params, (), noise, {}, data, None, None, None).compile()
  return compiled.memory_analysis().temp_size_in_bytes


def main(argv):
  del argv
  counts = [int(m) for m in FLAGS.microbatches]
  print('| config | generated batch | ' + ' | '.join(
      f'microbatches={m}' for m in counts) + ' |')
  print('|---|---|' + '---|' * len(counts))
  for label, spec, dim, image_shape in CONFIGS:
    sizes = [temp_bytes(spec, dim, image_shape, FLAGS.batch, m)
             for m in counts]
    cells = [f'{s / 1e6:.1f} MB ({s / sizes[0]:.2f}x)' for s in sizes]
    print(f'| {label} | {FLAGS.batch} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
  app.run(main)
