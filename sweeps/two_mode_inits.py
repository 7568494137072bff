"""Deng et al. Fig. 3 analogue: the two-mode target (modes at (+-1, 0),
std 0.2) from three initialisations of the generator's output: collapsed
between the modes, far away, and collapsed on one mode. Per-mode mass is
logged every 100 steps (`eval/mode_mass/0` and `/1`; 0.5 each is the
target).

  python -m experiments.ablate --sweep sweeps/two_mode_inits.py \
      --workdir runs/ablate/two_mode
"""


def _init(name, offset):
  return {'name': name, 'model.generator.init_offset': offset,
          'model.generator.init_scale': 0.01}


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe,dataset=two_mode',
      'overrides': {'train.steps': 1000, 'train.eval_every': 100},
      'grid': {'init': [_init('between', (0.0, 0.0)),
                        _init('far', (4.0, 4.0)),
                        _init('on_one_mode', (1.0, 0.0))]},
      'seeds': 2,
      'plot_metrics': ('eval/mode_mass/0', 'eval/min_mode_mass'),
  }
