"""DMD ingredients on the 8-Gaussian ring (REFERENCES T10): teacher (exact
oracle vs a trained EDM teacher), fake-denoiser updates per generator update
(1 vs 5, DMD2's TTUR) and the regression loss (0 vs 0.25, DMD).

  python -m experiments.ablate --sweep sweeps/dmd_gmm.py \
      --workdir runs/ablate/dmd_gmm
"""


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/gmm.py:method=dmd',
      'overrides': {'train.steps': 2000},
      'grid': {'dmd.teacher': ['oracle', 'train'],
               'dmd.fake_steps_per_gen': [1, 5],
               'dmd.regression_weight': [0.0, 0.25]},
      'seeds': 2,
  }
