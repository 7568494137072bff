"""Number of positives at a fixed number of negatives (drifting paper
Table 2 analogue): data batch 16 / 128 / 512 / 2048 against 2048 generated
samples, demo recipe otherwise.

  python -m experiments.ablate --sweep sweeps/toy_n_pos.py \
      --workdir runs/ablate/n_pos
"""


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe,dataset=checkerboard',
      'grid': {'train.batch_size': [16, 128, 512, 2048]},
      'seeds': 2,
  }
