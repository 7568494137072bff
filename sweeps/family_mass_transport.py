"""Mass transport between separated modes (Gretton et al. 2605.05118): the
two-mode target (modes at (+-1, 0), std 0.2) with the generator's output
started as a narrow blob on the right mode, every field of the drifting
family, separation / tau swept from 40 down to 2 by sweeping tau at a fixed
separation of 2. The mass on each mode is logged every 100 steps
(`eval/mode_mass/*`); after the fixed budget of 1,000 steps the balance
`eval/min_mode_mass` is 0.5 when the mass has been shared and 0 when none
has moved. Demo recipe (Laplace kernel, one temperature in data units),
drift RMS-normalised for every field so that the comparison is of
directions (the conservative fields' magnitudes scale with 1/tau or with
the kernel's values, which would otherwise turn the tau sweep into a
learning-rate sweep). Batches of 512 keep the 60 runs near 20 minutes.

  python -m experiments.family --sections mass_transport
"""

FIELDS = ('bidirectional', 'nw', 'sinkhorn', 'kernel_gradient',
          'sharp_companion', 'mmd')
TEMPERATURES = (0.05, 0.1, 0.2, 0.5, 1.0)

# The set-up both mass-transport sweeps share (sweeps/family_transport_law.py
# reads it from here): batches of 512, drift RMS-normalised, the generator's
# output started as a narrow blob on the right mode.
START_ON_ONE_MODE = {'train.batch_size': 512, 'train.gen_batch_size': 512,
                     'field.normalize_drift': True,
                     'model.generator.init_offset': (1.0, 0.0),
                     'model.generator.init_scale': 0.1}


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe,dataset=two_mode',
      'overrides': {'train.steps': 1000, 'train.eval_every': 100,
                    'train.checkpoint_every': 500, **START_ON_ONE_MODE},
      'grid': {'field.normalization': list(FIELDS),
               'field.temperatures': [(t,) for t in TEMPERATURES]},
      'seeds': 2,
      'plot_metrics': ('eval/min_mode_mass',),
  }
