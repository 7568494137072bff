r"""What the drifting paper's ImageNet runs would cost with this codebase's
step, projected before anything runs.

  python -m experiments.benchmarks.cost

Compiles one drifting training step (`drifting.train_step`: the DiT
generator's forward and backward, the field, Adam and EMA) from shapes
alone for the DiT sizes of the drifting release (B/2, L/2) on SD-VAE
latents (32 x 32 x 4, patch 2, 16 context tokens), at the per-device batch
of its ablation runs (global batch 4,096 = 64 classes x 64 generated
samples on 64 chips: 64 a chip), and reads its FLOPs and bytes from XLA
(`cost_analysis()`) and its memory (`memory_analysis()`). It then projects
seconds per step and days for `--epochs` of ImageNet (1,281,167 images) on
one H100, 8 H100s and a 64-chip TPU v6e slice, at `--fraction` of each
chip's dense bfloat16 peak (vendor figures, below), assuming the step's
cost grows linearly with the per-device batch and communication is hidden.

Each size is compiled twice: drifting on the raw latents, and in the
features of a latent MAE (the release's layout: ResNet stages 3, 4, 6, 3
at widths C..8C, `--mae_width` C, every second block's and each stage's
maps, per location and pooled, plus the raw sample), whose forward pass
on the data and forward and backward passes on the generated samples join
the step. What it leaves out, so the projection is a lower bound: the
class grouping of the field (per class group of 64, one group a chip
here), communication, and the host's data pipeline.

With `--dmd` (default) it then compiles DMD2's ImageNet-64 step
(`dmd_step_cost`: the 296M-parameter EDM-ADM U-Net as teacher, fake score
and generator, 5 fake-score updates with the GAN head, then the
generator's update, class-conditional on 64 x 64 x 3 images, 40 a chip)
and projects DMD2's 200k iterations at its global batch of 280.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from absl import app
from absl import flags

FLAGS = flags.FLAGS
IMAGENET_IMAGES = 1_281_167
GLOBAL_BATCH = 4096
LATENT_SHAPE = (32, 32, 4)
# Dense bfloat16 peaks, TFLOP/s per chip (vendor data sheets): H100 SXM
# 989, TPU v6e 918. Assumed, not measured here.
SETUPS = (('1 x H100', 1, 989.0), ('8 x H100', 8, 989.0),
          ('64 x TPU v6e', 64, 918.0))
# DMD2 on ImageNet-64 (Yin et al. 2024b): batch 280 on 7 GPUs (40 a GPU),
# 200k iterations with the GAN term (53 h), 410k without it (70 h).
DMD2_SHAPE = (64, 64, 3)
DMD2_BATCH = 280
DMD2_STEPS = 200_000
DMD2_FAKE_STEPS = 5  # fake-score updates a generator update (TTUR)


def _define_flags():
  flags.DEFINE_list('sizes', ['B/2', 'L/2'], 'DiT sizes.')
  flags.DEFINE_string('dtype', 'bfloat16', 'DiT compute dtype.')
  flags.DEFINE_integer('per_device_batch', 64, 'Generated (and data) '
                       'samples per chip in the compiled step.')
  flags.DEFINE_float('fraction', 0.4, 'Assumed fraction of the bfloat16 '
                     'peak the step reaches.')
  flags.DEFINE_integer('mae_width', 256, 'Width C of the latent MAE whose '
                       'features the second row of each size drifts in '
                       '(the release\'s MAE-256).')
  flags.DEFINE_bool('dmd', True, "Also DMD2's ImageNet-64 step "
                    '(`dmd_step_cost`).')
  flags.DEFINE_integer('dmd_per_device_batch', 40, 'Images per chip in '
                       "the compiled DMD step (DMD2's 280 on 7 GPUs).")
  flags.DEFINE_float('epochs', 100, 'ImageNet epochs (the release\'s '
                     'ablations: 100).')


def abstract_mae(width: int, blocks):
  """The release's latent-MAE encoder layout (ResNet of basic blocks,
  stages `blocks` at widths C, 2C, 4C, 8C) as a frozen encoder whose
  parameters are shapes only."""
  from flax import nnx

  from drift_jax.encoders import mae as mae_encoder
  from drift_jax.models import mae as mae_model
  module = nnx.eval_shape(lambda: mae_model.MAEResNet(
      LATENT_SHAPE, width=width, blocks=blocks, rngs=nnx.Rngs(0)))
  graphdef, params = nnx.split(module)
  return mae_encoder.FrozenMAE(graphdef, params, {})


def step_cost(size: str, dtype: str, batch: int, mae_width: int = 0) -> dict:
  """FLOPs, bytes accessed and memory of one compiled drifting step for a
  DiT of `size` on latents, `batch` samples, one device; in the features
  of a latent MAE of `mae_width` (ResNet-34 stages) when > 0."""
  from drift_jax import methods
  from drift_jax.config import config_lib
  from drift_jax.methods import drifting
  from drift_jax.methods.context import RunContext
  from drift_jax.parallel import sharding as parallel
  c = config_lib.load_config_file(
      'configs/fashion_mnist.py:generator=dit,size=32')
  c.model.generator.update(dit_size=size, dit_dtype=dtype)
  c.model.generator.noise_dim = (math.prod(LATENT_SHAPE)
                                 + c.model.generator.dit_style_tokens)
  c.train.update(batch_size=batch, gen_batch_size=batch)
  c = methods.finalize(c)
  prerequisites, constants = {}, ()
  if mae_width:
    encoder = abstract_mae(mae_width, (3, 4, 6, 3))
    c.features.raw = True  # the release adds the raw sample ('global')
    prerequisites, constants = {'encoder': encoder}, {
        'encoder': encoder.params}
  spec = drifting.make_spec(c, RunContext(
      dim=math.prod(LATENT_SHAPE), mesh=parallel.make_mesh(1),
      image_shape=LATENT_SHAPE, prerequisites=prerequisites))
  state = jax.eval_shape(lambda: drifting.init(spec, jax.random.key(0)))
  params = sum(math.prod(a.shape) for a in jax.tree.leaves(
      state['gen']['params']))
  data = jax.ShapeDtypeStruct((batch, math.prod(LATENT_SHAPE)), jnp.float32)
  compiled = jax.jit(lambda s, e, d, k: drifting.train_step(spec, s, e, d, k)
                     ).lower(state, constants, data, jax.random.key(0)
                             ).compile()
  return _costs(compiled, params)


def projection(flops_per_sample: float, chips: int, peak_tflops: float,
               fraction: float, epochs: float) -> tuple[float, float]:
  """(seconds per step, days) for the global batch split over `chips`."""
  steps = epochs * IMAGENET_IMAGES / GLOBAL_BATCH
  return projection_for(flops_per_sample, GLOBAL_BATCH, steps, chips,
                        peak_tflops, fraction)


def projection_for(flops_per_sample: float, global_batch: int, steps: float,
                   chips: int, peak_tflops: float, fraction: float
                   ) -> tuple[float, float]:
  """(seconds per step, days for `steps`) for `global_batch` split over
  `chips` at `fraction` of their peak."""
  seconds = (flops_per_sample * global_batch / chips
             / (peak_tflops * 1e12 * fraction))
  return seconds, seconds * steps / 86400


def dmd_step_cost(dtype: str, batch: int, *, image_shape=DMD2_SHAPE,
                  num_classes: int = 1000, adm=None) -> dict:
  """FLOPs, bytes and memory of one compiled DMD2 step (`dmd.train_step`:
  `dmd.fake_steps_per_gen` = 5 fake-score updates with the GAN head, then
  the generator's DMD and GAN losses) with the EDM-ADM U-Net (`adm`
  defaults: DMD2's ImageNet-64 teacher) as the teacher, the fake score and,
  as in DMD2, the generator; `batch` generated (and real) images on one
  device, from shapes alone.

  XLA counts a loop's body once, and five unrolled fake updates take
  minutes to compile on a CPU, so the step is compiled with one fake
  update, and one fake update alone: the FLOPs and bytes are the first
  plus four times the second; the memory is the first's."""
  from drift_jax import methods
  from drift_jax.methods import diffusion
  from drift_jax.methods import dmd
  from drift_jax.methods.context import RunContext
  from drift_jax.methods.context import Teacher
  from drift_jax.parallel import sharding as parallel
  dim = math.prod(image_shape)
  c = methods.base_config()
  c.method = 'dmd'
  c.model.denoiser.update(name='adm', **(adm or {}))
  c.model.generator.noise_dim = dim
  c.precision.compute = dtype
  c.diffusion.sigma_max = 80.0
  c.dmd.update(generator='teacher', fake_steps_per_gen=1,
               gan_gen_weight=3e-3, gan_disc_weight=1e-2)
  c.train.update(batch_size=batch, gen_batch_size=batch)
  c = methods.finalize(c)
  den = diffusion.make_denoiser_net(c, dim, image_shape=image_shape,
                                    num_classes=num_classes)
  teacher = jax.eval_shape(den.init, jax.random.key(0))
  spec = dmd.make_spec(c, RunContext(
      dim=dim, mesh=parallel.make_mesh(1), image_shape=image_shape,
      num_classes=num_classes,
      prerequisites={'teacher': Teacher(den.apply, teacher)}))
  state = jax.eval_shape(lambda p: dmd.init(dataclasses.replace(
      spec, teacher=Teacher(den.apply, p)), jax.random.key(0)), teacher)
  params = sum(math.prod(a.shape) for a in jax.tree.leaves(teacher))
  data = {'x': jax.ShapeDtypeStruct((batch, dim), jnp.float32),
          'labels': jax.ShapeDtypeStruct((batch,), jnp.int32)}
  step = _costs(jax.jit(lambda s, t, d, k: dmd.train_step(
      spec, s, {'teacher': t}, d, k)).lower(
          state, teacher, data, jax.random.key(0)).compile(), params)
  fake = _costs(jax.jit(lambda s, d, k: dmd.fake_update(
      spec, s['fake'], s['gen']['params'], k,
      (s['gan_head'], d['x'], d['labels']))).lower(
          state, data, jax.random.key(0)).compile(), params)
  extra = DMD2_FAKE_STEPS - 1
  return dict(step, flops=step['flops'] + extra * fake['flops'],
              bytes=step['bytes'] + extra * fake['bytes'])


def _costs(compiled, params: int) -> dict:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  memory = compiled.memory_analysis()
  return dict(params=params, flops=float(cost['flops']),
              bytes=float(cost.get('bytes accessed', math.nan)),
              gib=(memory.argument_size_in_bytes + memory.temp_size_in_bytes
                   + memory.output_size_in_bytes) / 2**30)


def main(argv):
  del argv
  batch = FLAGS.per_device_batch
  print(f'Drifting step, DiT on {"x".join(map(str, LATENT_SHAPE))} latents, '
        f'{FLAGS.dtype} compute, {batch} samples per chip; projected at '
        f'{FLAGS.fraction:.0%} of the bfloat16 peak, {FLAGS.epochs:g} '
        f'epochs = {FLAGS.epochs * IMAGENET_IMAGES / GLOBAL_BATCH:,.0f} '
        f'steps of {GLOBAL_BATCH:,}.\n')
  _print_header('DiT')
  for size, mae_width in [(s, w) for s in FLAGS.sizes
                          for w in (0, FLAGS.mae_width)]:
    cost = step_cost(size, FLAGS.dtype, batch, mae_width)
    per_sample = cost['flops'] / batch
    cells = [projection(per_sample, chips, peak, FLAGS.fraction,
                        FLAGS.epochs) for _, chips, peak in SETUPS]
    label = f'{size}, MAE-{mae_width} features' if mae_width else (
        f'{size}, raw latents')
    _print_row(label, cost, batch, cells)
  if FLAGS.dmd:
    print_dmd_table(FLAGS.dtype, FLAGS.dmd_per_device_batch, FLAGS.fraction)


def print_dmd_table(dtype: str, batch: int, fraction: float) -> None:
  """DMD2's ImageNet-64 step (`dmd_step_cost`), projected to its 200k
  iterations at its global batch of 280."""
  cost = dmd_step_cost(dtype, batch)
  per_sample = cost['flops'] / batch
  cells = [projection_for(per_sample, DMD2_BATCH, DMD2_STEPS, chips, peak,
                          fraction) for _, chips, peak in SETUPS]
  print(f'\nDMD2 step on {"x".join(map(str, DMD2_SHAPE))} ImageNet images '
        f'(EDM-ADM U-Net teacher, fake score and generator; '
        f'{DMD2_FAKE_STEPS} fake updates with the GAN head a generator '
        f'update), {dtype} compute, {batch} images per chip; projected at '
        f'{fraction:.0%} of the bfloat16 peak, {DMD2_STEPS:,} steps of '
        f'{DMD2_BATCH}.\n')
  _print_header('network')
  _print_row('EDM-ADM U-Net', cost, batch, cells)


def _print_header(first: str) -> None:
  print(f'| {first} | parameters | GFLOP / sample (step) | GB accessed / '
        'sample | memory at this batch | ' + ' | '.join(
            f'{name}: s/step, days' for name, _, _ in SETUPS) + ' |')
  print('|---|---|---|---|---|' + '---|' * len(SETUPS))


def _print_row(label: str, cost: dict, batch: int, cells) -> None:
  """One table row: `cost` of a step of `batch` samples, and (seconds a
  step, days) per setup."""
  print(f'| {label} | {cost["params"] / 1e6:.0f}M | '
        f'{cost["flops"] / batch / 1e9:.0f} | '
        f'{cost["bytes"] / batch / 1e9:.2f} | {cost["gib"]:.1f} GiB | '
        + ' | '.join(f'{s:.3g}, {d:.3g}' for s, d in cells) + ' |')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
