"""The bridge in training (reproduction.md section 6, REFERENCES T9): DMD
on the 8-Gaussian ring with one ingredient turned on at a time, starting
from kde denoisers at the clean x (= Gaussian `nw` drifting at tau = sigma,
tested in tests/methods_test.py) and ending at DMD with a learned fake
denoiser and the exact (oracle) teacher. sigma = 0.3 as in the section's
field table; 2,000 steps like sweeps/dmd_gmm.py.

  python -m experiments.ablate --sweep sweeps/bridge_training.py \
      --workdir runs/ablate/bridge_training
"""

SIGMA = 0.3
KDE = {'dmd.denoisers': 'kde', 'dmd.regression_weight': 0.0}


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/gmm.py:method=dmd',
      'overrides': {'train.steps': 2000},
      'grid': {'stage': [
          {'name': '1_kde_clean', **KDE, 'dmd.noised': False,
           'dmd.fixed_sigma': SIGMA, 'dmd.normalize': False},
          {'name': '2_noised', **KDE, 'dmd.noised': True,
           'dmd.fixed_sigma': SIGMA, 'dmd.normalize': False},
          {'name': '3_sigma_schedule', **KDE, 'dmd.noised': True,
           'dmd.fixed_sigma': 0.0, 'dmd.normalize': False},
          {'name': '4_l1_normalize', **KDE, 'dmd.noised': True,
           'dmd.fixed_sigma': 0.0, 'dmd.normalize': True},
          {'name': '5_learned_fake', 'dmd.denoisers': 'network',
           'dmd.teacher': 'oracle', 'dmd.regression_weight': 0.0},
      ]},
      'seeds': 2,
  }
