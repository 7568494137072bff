"""Temperature sensitivity (He et al. 2603.12366, Sinkhorn drifting): tau
swept over two and a half decades (0.003 ... 1 in data units) on the
checkerboard and the 8-Gaussian ring, Deng's bidirectional field vs
two-sided Sinkhorn couplings vs the conservative kernel-gradient field.
Demo recipe (Laplace kernel, one temperature), drift RMS-normalised for
every field (so that tau changes the field's direction, not the step
size), batches of 512, 1,000 steps, 3 seeds. The grid reaches below
Sinkhorn's best temperature (0.01 on the checkerboard with 2 seeds), so
that every field's optimum has a neighbour on each side: its sensitivity
is measured in a window around its own optimum (`experiments.family`).

  python -m experiments.family --sections temperature
"""

FIELDS = ('bidirectional', 'sinkhorn', 'kernel_gradient')
TEMPERATURES = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe',
      'overrides': {'train.steps': 1000, 'train.eval_every': 250,
                    'train.checkpoint_every': 500,
                    'train.batch_size': 512, 'train.gen_batch_size': 512,
                    'field.normalize_drift': True},
      'grid': {'data.name': ['checkerboard', 'eight_gaussians'],
               'field.normalization': list(FIELDS),
               'field.temperatures': [(t,) for t in TEMPERATURES]},
      'seeds': 3,
  }
