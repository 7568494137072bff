"""A seconds-long suite at `runlocal` sizes: the harness's own smoke test
(tests/compare_test.py), not a comparison.

  python -m experiments.compare --suite suites/tiny.py
"""


def get_suite():
  return {
      'name': 'tiny',
      'default_method': 'drifting',
      'search_points': 2,
      'final_seeds': (1, 2),
      'tuning_seed': 0,
      # drifting and the better rival on validation get a third seed.
      'finalists': {'seeds': (1, 2, 3), 'always': ('drifting',),
                    'best_rivals': 1},
      'floor_draws': 3,
      'data_draws': 3,
      'evals_per_run': 2,
      'calibration_seconds': 0.05,
      'tasks': [
          {'name': 'ring', 'config': 'configs/gmm.py:runlocal',
           'overrides': {'eval.num_samples': 128}, 'budget_seconds': 0.2,
           'eval_seed': 7, 'metric': 'eval/energy_distance_ratio',
           'metrics': ('eval/mmd2_ratio', 'eval/modes_covered'),
           'needs': ('mixture',)},
      ],
      'methods': [
          {'name': 'drifting', 'overrides': {'method': 'drifting'},
           'search': {'optim.lr': (1e-3, 3e-3)}},
          {'name': 'dmd_trained',
           'overrides': {'method': 'dmd', 'dmd.teacher': 'train',
                         'dmd.regression_weight': 0.0},
           'search': {'dmd.teacher_share': (0.5, 0.75)}},
          # A learning rate no network survives: the harness must report
          # it failed, never drop it.
          {'name': 'diverging', 'overrides': {'method': 'drifting'},
           'search': {'optim.lr': (1e8, 1e9)}},
      ],
  }
