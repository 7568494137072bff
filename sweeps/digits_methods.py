"""Issue 6's quality bar on the digits: pixel-space vs feature-space
drifting vs DMD (with its trained teacher), unconditional and
class-conditional, one seed, configs/digits.py defaults.

  python -m experiments.ablate --sweep sweeps/digits_methods.py \
      --workdir runs/ablate/digits_methods
"""


def get_sweep():
  return {
      'base': 'configs/digits.py',
      'grid': {'run': [
          {'name': 'drifting_pixel'},
          {'name': 'drifting_features', 'features.encoder': 'train'},
          {'name': 'drifting_features_cfg', 'features.encoder': 'train',
           'conditional.enabled': True},
          {'name': 'drifting_pixel_cfg', 'conditional.enabled': True},
          {'name': 'dmd', 'method': 'dmd', 'train.steps': 1000},
          {'name': 'dmd_conditional', 'method': 'dmd', 'train.steps': 1000,
           'conditional.enabled': True},
      ]},
      'seeds': 1,
      'plot_metrics': ('eval/feature_fd', 'eval/class_accuracy'),
  }
