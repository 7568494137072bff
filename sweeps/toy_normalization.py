"""Kernel-normalisation ablation (drifting paper Table 11 analogue): softmax
over x and y (bidirectional, the default) / over y only (row: one softmax
over positives and negatives jointly) / none (Z = 1), on the checkerboard
with the demo recipe otherwise (paper's ImageNet FIDs 8.46 / 8.92 / 10.54).
`nw` (separate softmaxes for p and q, the theory object) is added.

  python -m experiments.ablate --sweep sweeps/toy_normalization.py \
      --workdir runs/ablate/normalization
"""


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe,dataset=checkerboard',
      'grid': {'field.normalization': ['bidirectional', 'row', 'none',
                                       'nw']},
      'seeds': 2,
  }
