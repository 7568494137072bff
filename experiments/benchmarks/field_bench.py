r"""Field and drifting-loss benchmarks against the authors' algorithm.

  python -m experiments.benchmarks.field_bench [--quick] [--sections ...]

Every figure is printed beside the baseline (`baseline.compute_v`: the
authors' Algorithm 2 with their App. A.6 normalisations, plain dense jnp)
measured in the same process, so the ratios survive a noisy machine.
Sections:
  grad     the drifting-loss gradient at the toy size (N = M = 2048, D = 2):
           3 temperatures with both normalisations, and the demo's single
           raw temperature.
  sweep    field throughput and XLA's compiled memory against N = M, D,
           1 or 3 temperatures, dense vs blocked (float32).
  blocks   the field's time against rows per block at the toy size.
  large    N = M = 65,536, D = 64, bidirectional, one temperature, in a
           child process: wall time and the child's peak RSS.
  floor    the machine's floor at the toy size: the N (N + M) exponentials
           alone, and the matmul FLOP rate.
  train    training steps per second of the toy recipe (runner's step vs the
           same generator and optimiser with the baseline field).
  family   training steps per second of every field of the drifting family
           relative to `bidirectional`.
Results go to BENCHMARKS.md by hand, with this command.
"""

import functools
import json
import os
import platform
import resource
import subprocess
import sys
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

TOY_TEMPS = (0.02, 0.05, 0.2)


def timeit(fn, *args, repeats=5, min_seconds=1.0):
  """Median seconds per call of a jitted fn (compiled and warmed first)."""
  jax.block_until_ready(fn(*args))
  times = []
  start = time.perf_counter()
  while len(times) < repeats or time.perf_counter() - start < min_seconds:
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
    if len(times) >= 50:
      break
  return float(np.median(times))


def compiled_bytes(fn, *args):
  """XLA's compiled temp + output bytes for fn(*args), or None."""
  try:
    m = jax.jit(fn).lower(*args).compile().memory_analysis()
    return int(m.temp_size_in_bytes + m.output_size_in_bytes)
  except Exception:  # noqa: BLE001 (not every backend reports it)
    return None


def points(n, dim, seed):
  return jax.random.normal(jax.random.key(seed), (n, dim), jnp.float32)


def ours_field(temps, normalize, block_size=None):
  return lambda x, pos: fields.drifting_field(
      x, pos, x, temperature=temps, normalize_distances=normalize,
      normalize_drift=normalize, block_size=block_size)


def ours_loss(temps, normalize, block_size=None):
  field = ours_field(temps, normalize, block_size)
  return lambda x, pos: losses.drift_loss(x, field(x, pos))


def rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def log_space_field(temps, normalize):
  """Our field through its log-space formulas only (the pre-fast path)."""
  def field(x, pos):
    # A benchmark-only switch: every block out of range, so log space.
    saved = fields.bidirectional._MAX_LOG_GAP  # noqa: SLF001
    fields.bidirectional._MAX_LOG_GAP = -1.0
    try:
      return jax.jit(ours_field(temps, normalize, x.shape[0]))(x, pos)
    finally:
      fields.bidirectional._MAX_LOG_GAP = saved
      jax.clear_caches()
  return field


def section_grad(args):
  print('\n## Drifting-loss gradient, N = M = 2048, D = 2 (float32)\n')
  print('V is compared with our log-space formulas in float32 and with a '
        'float64 evaluation (relative max-abs differences).\n')
  print('| case | baseline (ms) | ours (ms) | speed-up | ours vs log-space '
        '| ours vs f64 | baseline vs f64 |')
  print('|---|---|---|---|---|---|---|')
  x, pos = points(2048, 2, 0), points(2048, 2, 1) * 0.5
  cases = (('3 temperatures, both normalisations', TOY_TEMPS, True),
           ('demo: tau = 0.05, raw distances', (0.05,), False))
  for name, temps, norm in cases:
    g_base = jax.jit(jax.grad(functools.partial(
        baseline.drifting_loss, temperatures=temps, normalize=norm)))
    g_ours = jax.jit(jax.grad(ours_loss(temps, norm)))
    t_base, t_ours = timeit(g_base, x, pos), timeit(g_ours, x, pos)
    v_base, scale = jax.jit(functools.partial(
        baseline.compute_v, temperatures=temps, normalize=norm))(x, pos, x)
    v_ours = jax.jit(ours_field(temps, norm))(x, pos)
    v_log = log_space_field(temps, norm)(x, pos)
    with jax.enable_x64():
      x64, p64 = (np.asarray(a, np.float64) for a in (x, pos))
      v_64 = ours_field(temps, norm, 2048)(x64, p64)
    print(f'| {name} | {1e3 * t_base:.1f} | {1e3 * t_ours:.1f} | '
          f'{t_base / t_ours:.2f}x | {rel_err(v_ours, v_log):.1e} | '
          f'{rel_err(v_ours, v_64):.1e} | '
          f'{rel_err(np.asarray(v_base) * float(scale), v_64):.1e} |',
          flush=True)


def section_sweep(args):
  print('\n## Field throughput and compiled memory (float32, bidirectional,'
        ' both normalisations)\n')
  print('"auto" is the default (`block_size=None`, rows per block in '
        'parentheses); "one block" holds all N rows at once. Memory is XLA\'s '
        'compiled temp + output bytes. The baseline is skipped (-) where it '
        f'would need more than {args.max_gib} GiB.\n')
  print('| N = M | D | temps | baseline ms | auto ms (block) | one block ms |'
        ' baseline / auto / one block MiB | speed-up auto |')
  print('|---|---|---|---|---|---|---|---|')
  sizes = (2048, 8192) if args.quick else (2048, 8192, 16384)
  dims = (2, 64) if args.quick else (2, 64, 512)
  limit = args.max_gib * 2**30
  for n in sizes:
    for dim in dims:
      for temps in ((0.05,), TOY_TEMPS):
        x, pos = points(n, dim, 0), points(n, dim, 1)
        block = fields.auto_block_size(n, 2 * n, len(temps), dim)
        fns = [jax.jit(lambda x, p, t=temps: baseline.compute_v(
                   x, p, x, t, True)[0]),
               jax.jit(ours_field(temps, True)),
               jax.jit(ours_field(temps, True, n))]
        mem = [compiled_bytes(f, x, pos) for f in fns]
        times = [timeit(f, x, pos, repeats=3, min_seconds=0.5)
                 if b is not None and b <= limit else None
                 for f, b in zip(fns, mem, strict=True)]
        ms = ['-' if t is None else f'{1e3 * t:.0f}' for t in times]
        mib = ' / '.join('?' if b is None else f'{b / 2**20:.0f}' for b in mem)
        speed = ('-' if times[0] is None or times[1] is None
                 else f'{times[0] / times[1]:.2f}x')
        print(f'| {n} | {dim} | {len(temps)} | {ms[0]} | {ms[1]} ({block}) | '
              f'{ms[2]} | {mib} | {speed} |', flush=True)


def section_blocks(args):
  print('\n## Rows per block at the toy size (N = M = 2048, D = 2, '
        'normalised)\n')
  print('| temps | ' + ' | '.join(str(b) for b in BLOCKS) + ' | auto |')
  print('|---' * (len(BLOCKS) + 2) + '|')
  x, pos = points(2048, 2, 0), points(2048, 2, 1) * 0.5
  for temps in ((0.05,), TOY_TEMPS):
    cells = [f'{1e3 * timeit(jax.jit(ours_field(temps, True, b)), x, pos):.0f}'
             f' ms' for b in (*BLOCKS, None)]
    print(f'| {len(temps)} | ' + ' | '.join(cells) + ' |', flush=True)


BLOCKS = (32, 64, 128, 256, 512, 2048)


def _large_child(n, dim, block):
  x, pos = points(n, dim, 0), points(n, dim, 1)
  field = jax.jit(ours_field((0.05,), True, block or None))
  t = time.perf_counter()
  v = jax.block_until_ready(field(x, pos))
  seconds = time.perf_counter() - t
  ok = bool(jnp.all(jnp.isfinite(v)))
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  print(json.dumps({'seconds': seconds, 'peak_rss': peak, 'finite': ok}))


def section_large(args):
  n = 16384 if args.quick else 65536
  dim, block = 64, args.large_block
  print(f'\n## N = M = {n}, D = {dim}, bidirectional, 1 temperature\n')
  dense_bytes = 4 * n * 2 * n
  print(f'The dense [N, N + M] logits alone need {dense_bytes / 2**30:.1f} '
        'GiB (float32); the baseline holds several such matrices.')
  out = subprocess.run(
      [sys.executable, '-m', 'experiments.benchmarks.field_bench',
       '--_large_child', str(n), str(dim), str(block)],
      capture_output=True, text=True, check=True)
  r = json.loads(out.stdout.strip().splitlines()[-1])
  block = block or fields.auto_block_size(n, 2 * n, 1, dim)
  print(f'\nblocked (block {block}): {r["seconds"]:.1f} s including '
        f'compilation, peak RSS {r["peak_rss"] / 2**30:.2f} GiB, finite: '
        f'{r["finite"]}', flush=True)


def section_floor(args):
  print('\n## Machine floor at the toy size (N = 2048, N + M = 4096)\n')
  n, t = 2048, 4096
  logits = -jnp.abs(points(n, t // n * n, 2).reshape(n, t))
  exps = jax.jit(lambda a: jnp.sum(jnp.exp(a), axis=-1))
  t_exp = timeit(exps, logits)
  a, b = points(2048, 2048, 3), points(2048, 2048, 4)
  mm = jax.jit(lambda a, b: a @ b)
  t_mm = timeit(mm, a, b)
  x, pos = points(2048, 2, 0), points(2048, 2, 1)
  for temps in ((0.05,), TOY_TEMPS):
    t_field = timeit(jax.jit(ours_field(temps, True)), x, pos)
    print(f'- {len(temps)} temperature(s): field {1e3 * t_field:.1f} ms = '
          f'{t_field / (len(temps) * t_exp):.1f}x the time of its '
          f'{len(temps)} x N(N+M) exponentials ({1e3 * t_exp:.2f} ms each)')
  print(f'- matmul 2048^3: {2 * 2048**3 / t_mm / 1e9:.1f} GFLOP/s')


def section_train(args):
  """The runner's chained step vs the authors' dense field in the same
  generator, optimiser and loss (`train_step`), at the toy size."""
  from experiments.benchmarks import train_step
  print('\n## Toy recipe training steps per second (1 device)\n')
  batch = points(2048, 2, 1) * 0.5
  config = train_step.toy_config(2048)
  n = 20 if args.quick else 100
  sps_base = train_step.steps_per_second(
      *train_step.authors(config, batch), n)
  sps_ours = train_step.steps_per_second(*train_step.ours(config, batch), n)
  print(f'- baseline {sps_base:.1f} steps/s, ours {sps_ours:.1f} steps/s '
        f'({sps_ours / sps_base:.2f}x); 2000 steps = {2000 / sps_ours:.0f} s '
        'of stepping')


def section_family(args):
  """Training steps per second of every field (`fields.NORMALIZATIONS`),
  the toy recipe with the authors' three normalised temperatures, relative
  to `bidirectional` in the same process."""
  from experiments.benchmarks import train_step
  n = 512 if args.quick else 2048
  print(f'\n## The drifting family: training steps per second (N = M = {n},'
        ' 3 temperatures, normalised)\n')
  print('| field | steps/s | vs bidirectional |')
  print('|---|---|---|')
  batch = points(n, 2, 1) * 0.5
  calls = 10 if args.quick else 60
  rates = {}
  for name in fields.NORMALIZATIONS:
    config = train_step.toy_config(n, TOY_TEMPS, True)
    config.field.normalization = name
    if name == 'sharp_companion':
      config.field.kernel = 'laplace'
    rates[name] = train_step.steps_per_second(
        *train_step.ours(config, batch), calls)
  for name, rate in rates.items():
    print(f'| {name} | {rate:.1f} | {rate / rates["bidirectional"]:.2f}x |')


SECTIONS = {'grad': section_grad, 'sweep': section_sweep,
            'large': section_large, 'blocks': section_blocks,
            'floor': section_floor, 'train': section_train,
            'family': section_family}


FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a script: importing this module (tests,
  notebooks, other entry points) adds no flags."""
  flags.DEFINE_bool('quick', False, 'Smaller sizes (a smoke run).')
  flags.DEFINE_list('sections', [], f'Comma-separated subset of '
                    f'{sorted(SECTIONS)} (default: all).')
  flags.DEFINE_integer('large_block', 0, 'Rows per block for `large` (0: '
                       'auto).')
  flags.DEFINE_float('max_gib', 6.0, 'Skip runs whose compiled memory '
                     'exceeds this.')


def main(argv):
  cli.check_no_arguments(argv)
  cli.check_subset('sections', FLAGS.sections, SECTIONS)
  print(f'# field_bench: jax {jax.__version__}, {jax.devices()[0].device_kind}'
        f' x{jax.device_count()}, {platform.processor() or platform.machine()}'
        f', {os.cpu_count()} CPUs')
  for name in FLAGS.sections or SECTIONS:
    SECTIONS[name](FLAGS)  # sections read .quick, .large_block, .max_gib


if __name__ == '__main__':
  _define_flags()
  if len(sys.argv) > 1 and sys.argv[1] == '--_large_child':
    _large_child(*map(int, sys.argv[2:5]))  # a child of section `large`
  else:
    app.run(main)
