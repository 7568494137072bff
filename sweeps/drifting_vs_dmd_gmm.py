"""Drifting vs DMD (oracle and trained teacher) on the 8-Gaussian ring,
at the configs' defaults.

  python -m experiments.ablate --sweep sweeps/drifting_vs_dmd_gmm.py \
      --workdir runs/ablate/drifting_vs_dmd
"""


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/gmm.py',
      # Published with the drifting defaults of before the leaderboard
      # (one temperature, unnormalised, lr 1e-3); pinned so a rerun
      # reproduces them.
      'overrides': {'optim.lr': 1e-3, 'field.temperatures': (0.05,),
                    'field.normalize_distances': False,
                    'field.normalize_drift': False},
      'grid': {'method': [
          {'name': 'drifting', 'method': 'drifting'},
          {'name': 'dmd_oracle', 'method': 'dmd', 'dmd.teacher': 'oracle'},
          {'name': 'dmd_trained', 'method': 'dmd', 'dmd.teacher': 'train'},
      ]},
      'seeds': 3,
  }
