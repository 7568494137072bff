"""The two-mode initialisations (sweeps/two_mode_inits.py) with the
authors' full field recipe instead of the demo's single tau: distances
normalised by their batch mean, temperatures (0.02, 0.05, 0.2), each
temperature's drift normalised (Deng App. A.6), and a wider initial blob
(output scale 0.1 instead of 0.01).

  python -m experiments.ablate --sweep sweeps/two_mode_inits_authors.py \
      --workdir runs/ablate/two_mode_authors
"""


def _init(name, offset):
  return {'name': name, 'model.generator.init_offset': offset,
          'model.generator.init_scale': 0.1}


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe,dataset=two_mode',
      'overrides': {'train.steps': 1000, 'train.eval_every': 100,
                    'field.temperatures': (0.02, 0.05, 0.2),
                    'field.normalize_distances': True,
                    'field.normalize_drift': True},
      'grid': {'init': [_init('between', (0.0, 0.0)),
                        _init('far', (4.0, 4.0)),
                        _init('on_one_mode', (1.0, 0.0))]},
      'seeds': 1,
      'plot_metrics': ('eval/mode_mass/0', 'eval/min_mode_mass'),
  }
