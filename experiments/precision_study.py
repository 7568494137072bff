r"""bfloat16 against float32 compute (`precision.compute`) on Fashion-MNIST.

  python -m experiments.precision_study [--steps 2000] [--seeds 1,2,3]

Two measurements, both against float32:
1. Quality: a short drifting run (configs/fashion_mnist.py at `runlocal`
   sizes, 28 x 28, the conv generator; the full config's evaluation
   classifier) per seed in each precision, the same seeds, batches and
   evaluation; the feature FD of its samples in the evaluation classifier
   (trained once, float32, shared by every run).
   Reported as a mean with its 95 % t-interval per precision, and the
   bf16 / float32 ratio on the log scale, paired by seed, with the ratio
   the design could detect (`stats.log_ratio_comparison`).
2. Arithmetic: each float32 run's final generator evaluated in both
   policies from the same weights and noise, and the drifting field and
   loss of its samples against a batch of real images (pixel features, as
   the runs drift in): the relative error of the samples, of the field V
   (|V_bf16 - V_f32| / |V_f32|, Frobenius) and of the loss.

Runs go to --workdir (resumable: a finished run returns at once) and each
result to --out as it finishes, so an interrupted study continues.
"""

from __future__ import annotations

import json
import math
import os

import jax
import numpy as np
from absl import app
from absl import flags

from experiments import cli

FLAGS = flags.FLAGS
PRECISIONS = ('float32', 'bfloat16')
FD = 'eval/feature_fd'


def _define_flags():
  flags.DEFINE_integer('steps', 2000, 'Training steps of each run.')
  flags.DEFINE_list('seeds', ['1', '2', '3'], 'Seeds (paired across the '
                    'two precisions).')
  flags.DEFINE_string('workdir', 'runs/precision', 'Parent of the runs.')
  flags.DEFINE_string('out', 'results/precision/summary.json',
                      'Results, written after every run.')
  flags.DEFINE_integer('eval_samples', 500, 'Samples each evaluation '
                       'scores.')


def run_config(compute: str, seed: int, steps: int, eval_samples: int,
               classifier: str):
  from drift_jax import methods
  from drift_jax.config import config_lib
  c = config_lib.load_config_file('configs/fashion_mnist.py:runlocal')
  # The full config's evaluation classifier (runlocal's is a smoke test's,
  # ~30 % accurate): FD in the features of a classifier that sees.
  full = config_lib.load_config_file('configs/fashion_mnist.py')
  c.classifier = full.classifier
  c.eval.classifier_channels = full.eval.classifier_channels
  c.seed = seed
  c.precision.compute = compute
  c.train.update(steps=steps, eval_every=steps, checkpoint_every=steps,
                 log_every=max(steps // 10, 1), progress=False)
  c.eval.update(num_samples=eval_samples, plot=False, classifier=classifier)
  return methods.finalize(c)


def _load(out: str) -> dict:
  if os.path.exists(out):
    with open(out) as f:
      return json.load(f)
  return {'runs': {}, 'arithmetic': {}}


def _save(out: str, results: dict) -> None:
  os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
  with open(out + '.tmp', 'w') as f:
    json.dump(results, f, indent=1, sort_keys=True)
  os.replace(out + '.tmp', out)


def train_runs(seeds, steps, eval_samples, root, out) -> dict:
  """{precision: {seed: FD}} of every run, training what is missing."""
  from drift_jax.train import runner
  results = _load(out)
  shared = os.path.join(root, 'classifier')
  for seed in seeds:
    for compute in PRECISIONS:
      name = f'{compute}_seed{seed}'
      if name in results['runs']:
        continue
      workdir = os.path.join(root, name)
      # The first run trains the evaluation classifier; the others read it.
      classifier = shared if os.path.isdir(shared) else 'train'
      summary = runner.train_and_evaluate(
          run_config(compute, seed, steps, eval_samples, classifier),
          workdir)
      if classifier == 'train':
        os.symlink(os.path.abspath(os.path.join(workdir, 'classifier')),
                   shared)
      results['runs'][name] = {
          'compute': compute, 'seed': seed, 'steps': steps, 'fd': summary[FD],
          'wall_seconds': summary['time/wall_seconds']}
      _save(out, results)
      print(f'{name}: feature FD {summary[FD]:.4g}', flush=True)
  return results


def arithmetic(seed: int, steps: int, eval_samples: int, root: str) -> dict:
  """Sample, field and loss errors of bf16 against float32 compute, at
  the float32 run's final weights."""
  from drift_jax.data import datasets as data_lib
  from drift_jax.methods import drifting
  from drift_jax.methods.context import RunContext
  from drift_jax.parallel import sharding as parallel
  from drift_jax.theory import losses
  from drift_jax.train import checkpoint
  workdir = os.path.join(root, f'float32_seed{seed}')
  specs, dataset = {}, None
  for compute in PRECISIONS:
    config = run_config(compute, seed, steps, eval_samples, 'none')
    dataset = dataset or data_lib.for_run(config)
    specs[compute] = drifting.make_spec(config, RunContext(
        dim=dataset.dim, mesh=parallel.make_mesh(1),
        image_shape=dataset.image_shape))
  spec = specs['float32']
  abstract = jax.eval_shape(lambda: drifting.init(spec, jax.random.key(0)))
  state = checkpoint.restore_from(
      os.path.join(workdir, 'checkpoints'), abstract)[1]
  params = state['gen']['ema'] if 'ema' in state['gen'] else state['gen'][
      'params']
  batch = config.train.gen_batch_size
  z = jax.random.normal(jax.random.key(seed), (batch, spec.noise_dim))
  data = dataset.train[:batch]
  out = {}
  for compute, s in specs.items():
    x = s.gen.apply(params, z)
    (fx, v), = drifting.grouped_fields(s, x, data, None, (), None).values()
    out[compute] = (np.asarray(x), np.asarray(v),
                    float(fx.shape[0] * losses.drift_loss(fx, v)))
  (x32, v32, l32), (x16, v16, l16) = out['float32'], out['bfloat16']
  return {'samples': float(np.linalg.norm(x16 - x32) / np.linalg.norm(x32)),
          'field': float(np.linalg.norm(v16 - v32) / np.linalg.norm(v32)),
          'loss': abs(l16 - l32) / abs(l32)}


def report(results: dict) -> str:
  from drift_jax import stats
  runs = results['runs']
  seeds = sorted({r['seed'] for r in runs.values()})
  fd = {c: [runs[f'{c}_seed{s}']['fd'] for s in seeds] for c in PRECISIONS}
  lines = ['| compute | feature FD, mean [95 % t-interval] | seeds | '
           'seconds a run |', '|---|---|---|---|']
  for c in PRECISIONS:
    i = stats.mean_interval(fd[c])
    wall = np.mean([runs[f'{c}_seed{s}']['wall_seconds'] for s in seeds])
    lines.append(f'| {c} | {i.mean:.4g} [{i.low:.4g}, {i.high:.4g}] | '
                 f'{i.n} | {wall:.0f} |')
  r = stats.log_ratio_comparison(fd['bfloat16'], fd['float32'])
  lines += ['', f'bf16 / float32 feature FD (paired by seed): '
            f'{r.ratio:.3g}× [{r.low:.3g}, {r.high:.3g}], p = {r.p_value:.2g}: '
            f'{r.verdict}; this design detects a {r.detectable:.3g}× '
            'ratio with 80 % power.', '',
            '| seed | samples: relative error | field V: relative error | '
            'loss: relative error |', '|---|---|---|---|']
  for seed, a in sorted(results['arithmetic'].items()):
    lines.append(f'| {seed} | {a["samples"]:.2e} | {a["field"]:.2e} | '
                 f'{a["loss"]:.2e} |')
  return '\n'.join(lines)


def main(argv):
  cli.check_no_arguments(argv)
  seeds = [int(s) for s in FLAGS.seeds]
  results = train_runs(seeds, FLAGS.steps, FLAGS.eval_samples,
                       FLAGS.workdir, FLAGS.out)
  for seed in seeds:
    if str(seed) not in results['arithmetic']:
      results['arithmetic'][str(seed)] = arithmetic(
          seed, FLAGS.steps, FLAGS.eval_samples, FLAGS.workdir)
      _save(FLAGS.out, results)
  print(report(results))
  if not all(math.isfinite(r['fd']) for r in results['runs'].values()):
    raise SystemExit('a run ended with a non-finite FD')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
