"""Drifting vs DMD (oracle teacher) on 8-component Gaussian mixtures in
d = 2, 8, 32, 128 at a fixed budget of 2,000 generator steps.

  python -m experiments.ablate --sweep sweeps/dim_scaling.py \
      --workdir runs/ablate/dim_scaling
"""


def get_sweep():
  return {
      'base': 'configs/gmm.py',
      'overrides': {'train.steps': 2000},
      'grid': {'data.dim': [2, 8, 32, 128],
               'method': ['drifting', 'dmd']},
      'seeds': 2,
  }
