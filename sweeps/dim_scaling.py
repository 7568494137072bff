"""Drifting vs DMD (oracle teacher) on 8-component Gaussian mixtures in
d = 2, 8, 32, 128 at a fixed budget of 2,000 generator steps
(generator noise 32-d, 128-d at d = 128).

  python -m experiments.ablate --sweep sweeps/dim_scaling.py \
      --workdir runs/ablate/dim_scaling
"""


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/gmm.py',
      # Published with the drifting defaults of before the leaderboard
      # (one temperature, unnormalised, lr 1e-3); pinned so a rerun
      # reproduces them.
      'overrides': {'train.steps': 2000, 'optim.lr': 1e-3,
                    'field.temperatures': (0.05,),
                    'field.normalize_distances': False,
                    'field.normalize_drift': False},
      # DMD's regression loss starts the teacher ODE from the generator's
      # noise, so that noise needs d >= data dim; at d = 128 both methods
      # get a 128-d noise (same generator for both).
      'grid': {'data.dim': [2, 8, 32,
                            {'name': '128_noise128', 'data.dim': 128,
                             'model.generator.noise_dim': 128}],
               'method': ['drifting', 'dmd']},
      'seeds': 2,
  }
