"""Does the Laplace field's residual matter for what is learnt? The Laplace
drifting field against its own score part and against the Gaussian field
(a difference of smoothed scores exactly, Lai et al. 2026), trained at
equal compute with 10 test seeds each (docs/reproduction.md §2).

  python -m experiments.compare --suite suites/laplace_vs_score.py
  python -m experiments.compare --suite suites/laplace_vs_score.py \
      --report_only

The three fields share the authors' normalised recipe (App. A.6: three
temperatures, distances divided by their batch mean, each temperature's
drift divided by its RMS) and differ only in the field:
  laplace     Deng et al.'s bidirectional Laplace field (the default);
  score_part  its companion score part, grad log (p * psi) -
              grad log (q * psi) with the companion kernel psi of
              `scores.laplace_decomposition` (`sharp_companion`): the
              Laplace field with its residual removed;
  gaussian    the bidirectional field with the Gaussian kernel.
Tuning: each field's temperature set times `field.temperature_factor`, on
its own values (the Gaussian kernel is sharper at one temperature, so its
axis starts higher), extended at an edge it is chosen on; learning rate
3e-3, the recipe's. Two tasks: the checkerboard (d = 2, where the
population residual is largest) and the 8-mode mixture in d = 32.
"""

# The authors' recipe, every field.
RECIPE = {'method': 'drifting', 'field.temperatures': (0.02, 0.05, 0.2),
          'field.normalize_distances': True, 'field.normalize_drift': True,
          'field.mask_self': True, 'optim.lr': 3e-3}
ED = 'eval/energy_distance_ratio'


def get_suite():
  return {
      'name': 'laplace_vs_score',
      'default_method': 'laplace',
      'title': 'The Laplace field, its score part and the Gaussian field '
               'at equal compute',
      'search_points': 2,
      'extend_edges': 1,
      'tuning_seed': 0,
      'final_seeds': tuple(range(1, 11)),
      'floor_draws': 10,
      'data_draws': 10,
      'evals_per_run': 3,
      'calibration_seconds': 2.0,
      'results': 'results/laplace_vs_score',
      'workdir': 'runs/laplace_vs_score',
      'report': 'docs/laplace_vs_score.md',
      'figures': 'docs/figures/laplace_vs_score',
      'tasks': [
          {'name': 'checkerboard',
           'config': 'configs/toy2d.py:dataset=checkerboard',
           'budget_seconds': 20, 'eval_seed': 1601, 'metric': ED,
           'metrics': ('eval/mmd2',)},
          {'name': 'gmm32', 'config': 'configs/gmm.py:dim=32',
           'budget_seconds': 20, 'eval_seed': 1605, 'metric': ED,
           'metrics': ('eval/mmd2', 'eval/modes_covered'),
           'needs': ('mixture',)},
      ],
      'methods': [
          {'name': 'laplace', 'label': 'Laplace field (drifting)',
           'overrides': {**RECIPE, 'field.kernel': 'laplace',
                         'field.normalization': 'bidirectional'},
           'search': {'field.temperature_factor': (1.0, 2.5)}},
          {'name': 'score_part', 'label': 'its score part (no residual)',
           'overrides': {**RECIPE, 'field.kernel': 'laplace',
                         'field.normalization': 'sharp_companion'},
           'search': {'field.temperature_factor': (1.0, 2.5)}},
          {'name': 'gaussian', 'label': 'Gaussian field',
           'overrides': {**RECIPE, 'field.kernel': 'gaussian',
                         'field.normalization': 'bidirectional'},
           'search': {'field.temperature_factor': (2.5, 6.25)}},
      ],
  }
