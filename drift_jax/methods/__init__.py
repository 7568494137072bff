"""Training methods, by config name; each is `init` / `train_step` /
`sample` (see `common.Method`), resolved before `jax.jit`."""

from drift_jax.methods import diffusion
from drift_jax.methods import dmd
from drift_jax.methods import drifting
from drift_jax.methods.common import Method

METHODS = {
    'drifting': drifting.make,
    'diffusion': diffusion.make,
    'dmd': dmd.make,
}

__all__ = ['METHODS', 'Method', 'diffusion', 'dmd', 'drifting']
