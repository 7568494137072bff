"""Antisymmetry ablation (drifting paper Table 1 analogue): V+ - V-,
1.5V+ - V-, V+ - 1.5V-, 2V+ - V-, V+ - 2V-, V+ only, on the checkerboard
with the demo recipe otherwise (paper's ImageNet FIDs 8.46 / 41.05 / 46.28 /
86.16 / 112.84 / 177.14).

  python -m experiments.ablate --sweep sweeps/toy_antisymmetry.py \
      --workdir runs/ablate/antisymmetry
"""


def _scales(a, b, name):
  return {'name': name, 'field.pos_scale': a, 'field.neg_scale': b}


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe,dataset=checkerboard',
      'grid': {'field': [_scales(1.0, 1.0, 'V+-V-'),
                         _scales(1.5, 1.0, '1.5V+-V-'),
                         _scales(1.0, 1.5, 'V+-1.5V-'),
                         _scales(2.0, 1.0, '2V+-V-'),
                         _scales(1.0, 2.0, 'V+-2V-'),
                         _scales(1.0, 0.0, 'V+only')]},
      'seeds': 2,
  }
