"""The digits quality bar: pixel-space vs feature-space drifting vs DMD
(with its trained teacher), unconditional and class-conditional, one seed,
configs/digits.py defaults (DMD's 1,000 steps come from its
`defaults_by_method`).

  python -m experiments.ablate --sweep sweeps/digits_methods.py \
      --workdir runs/ablate/digits_methods
"""


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/digits.py',
      # Published at lr 1e-3, drifting's default before the leaderboard.
      'overrides': {'optim.lr': 1e-3},
      'grid': {'run': [
          {'name': 'drifting_pixel'},
          {'name': 'drifting_features', 'features.encoder': 'train'},
          {'name': 'drifting_features_cfg', 'features.encoder': 'train',
           'conditional.enabled': True},
          {'name': 'drifting_pixel_cfg', 'conditional.enabled': True},
          {'name': 'dmd', 'method': 'dmd'},
          {'name': 'dmd_conditional', 'method': 'dmd',
           'conditional.enabled': True},
      ]},
      'seeds': 1,
      'plot_metrics': ('eval/feature_fd', 'eval/class_accuracy'),
  }
