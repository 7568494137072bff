"""Temperature ablation on the checkerboard (drifting paper Table 8
analogue): 0.02 / 0.05 / 0.2 / all three, the demo recipe otherwise.

  python -m experiments.ablate --sweep sweeps/toy_temperatures.py \
      --workdir runs/ablate/temperatures
"""


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe,dataset=checkerboard',
      'overrides': {'train.steps': 2000},
      'grid': {'field.temperatures': [(0.02,), (0.05,), (0.2,),
                                      (0.02, 0.05, 0.2)]},
      'seeds': 2,
  }
