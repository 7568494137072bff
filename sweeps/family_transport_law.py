"""Steps to transport mass between separated modes against separation /
tau (Gretton et al. 2605.05118; docs/reproduction.md §11).

The mass-transport sweep (sweeps/family_mass_transport.py) found every
field either sharing the mass within its 1,000 steps or moving none. The
far mode's signal at a generated point is e^(-sep/tau) for a field that
normalises each side by its own softmax (`nw`) and e^(-sep/(2 tau)) for
Alg. 2's bidirectional field (the geometric mean of the row and the column
softmax), so the time to move the mass should grow as e^(b sep/tau) with
b = 1 for `nw` and b = 1/2 for Alg. 2: exponential slowness, not a
threshold. This sweep measures the step at which the lighter mode first
holds a quarter of the mass, on finer sep/tau grids placed where each field
moves the mass within a 3,000-step horizon (sep/tau 8 ... 13 for `nw`,
16 ... 36 for Alg. 2; the first grid for Alg. 2 stopped at 26, where it
still moved the mass by the first evaluation, so it was extended), 3
seeds.

Set-up as in the mass-transport sweep: modes at (+-1, 0), std 0.2, the
generator's output started as a narrow blob on the right mode, Laplace
kernel, one temperature, drift RMS-normalised, batches of 512; the mode
masses are evaluated every 50 steps on 2,000 samples.

  python -m experiments.family --sections transport_law
"""

import os

from drift_jax.config import config_lib

# The mass-transport sweep's set-up, read from its file (sweeps are loaded
# by path, not imported as a package), so the two cannot drift apart.
_mass_transport = config_lib.load_module(
    os.path.join(os.path.dirname(__file__), 'family_mass_transport.py'),
    '_mass_transport')

SEPARATION = 2.0
RATIOS = {'nw': (8, 9, 10, 11, 12, 13),
          'bidirectional': (16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36)}


def _settings():
  return [{'name': f'{field}_x{ratio}', 'field.normalization': field,
           'field.temperatures': (SEPARATION / ratio,)}
          for field, ratios in RATIOS.items() for ratio in ratios]


def get_sweep():
  return {
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py:recipe,dataset=two_mode',
      'overrides': {'train.steps': 3000, 'train.eval_every': 50,
                    'train.checkpoint_every': 1000,
                    'eval.num_samples': 2000,
                    **_mass_transport.START_ON_ONE_MODE},
      'grid': {'setting': _settings()},
      'seeds': 3,
      'plot_metrics': ('eval/min_mode_mass',),
  }
