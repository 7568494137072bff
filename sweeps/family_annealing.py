"""The Gaussian kernel's high-frequency bottleneck and bandwidth annealing
(Turan & Ovsjanikov 2603.09936): on the checkerboard (cells of side 0.5),
a fixed Gaussian kernel (std 0.05 and 0.2), a Gaussian annealed as
tau(step) = max(0.5 exp(-r step), 0.05) with r = ln(10) / 1000 (0.5 at step
0, the floor 0.05 from step 1,000 on), and a fixed Laplace kernel (0.05 and
0.2), quality against step. Demo recipe otherwise, drift RMS-normalised,
batches of 512, 2,000 steps, 2 seeds.

  python -m experiments.family --sections annealing
"""

import math


def _kernel(name, kernel, tau, **schedule):
  return {'name': name, 'field.kernel': kernel,
          'field.temperatures': (tau,), **schedule}


def get_sweep():
  annealed = {'drifting.temperature_schedule': 'exponential',
              'drifting.anneal_rate': math.log(10.0) / 1000,
              'drifting.min_temperature': 0.05}
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe,dataset=checkerboard',
      'overrides': {'train.steps': 2000, 'train.eval_every': 200,
                    'train.checkpoint_every': 1000,
                    'train.batch_size': 512, 'train.gen_batch_size': 512,
                    'field.normalize_drift': True},
      'grid': {'kernel': [
          _kernel('gaussian_0.05', 'gaussian', 0.05),
          _kernel('gaussian_0.2', 'gaussian', 0.2),
          _kernel('gaussian_annealed_0.5_to_0.05', 'gaussian', 0.5,
                  **annealed),
          _kernel('laplace_0.05', 'laplace', 0.05),
          _kernel('laplace_0.2', 'laplace', 0.2)]},
      'seeds': 2,
  }
