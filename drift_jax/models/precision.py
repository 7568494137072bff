"""The mixed-precision policy of the trained networks (`precision` section).

`precision.compute='bfloat16'` is the drifting release's policy (and DMD2's
bf16 training): parameters, EMA and Adam state stay float32 (every layer's
`param_dtype`), each Flax layer computes in bfloat16 (its `dtype`: inputs
and a bfloat16 copy of its weights), and float32 stays where it carries
the numbers:
- adaLN / FiLM modulation layers (`KEEP_FLOAT32`: they scale every
  activation of a block) compute in float32;
- normalisation statistics are float32 (Flax computes them so whatever
  the layer's dtype);
- a network's outputs are cast to float32 (`common.Network.apply`), so the
  whole drifting field and loss, and DMD's score difference
  D_real - D_fake, are float32 (the field's distances also ask for
  `precision='highest'`).
The policy is applied by setting the layers' `dtype` once the network is
built (`apply_policy`), so every network (MLP, conv, U-Net, DiT, the GAN
head) takes it without a dtype argument of its own. `compute='float32'`
(the default) leaves the network untouched. Frozen feature encoders and
the evaluation networks stay float32: the policy changes what is trained,
never the scale it is scored on.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from drift_jax.config import config_lib

COMPUTE_DTYPES = {'float32': None, 'bfloat16': jnp.bfloat16}
# Layers whose attribute path holds one of these names compute in float32.
KEEP_FLOAT32 = ('modulation',)


def validate(config) -> None:
  config_lib.check_choice('precision.compute', config.precision.compute,
                          tuple(COMPUTE_DTYPES))


def compute_dtype(config):
  """The trained networks' compute dtype (None: float32, untouched)."""
  section = config.get('precision')
  return COMPUTE_DTYPES[section.compute] if section is not None else None


def apply_policy(module: nnx.Module, dtype) -> nnx.Module:
  """`module` with every Flax layer computing in `dtype` (modulation
  layers in float32), its parameters left float32; `dtype=None` returns
  it untouched."""
  if dtype is None:
    return module
  for path, layer in nnx.iter_modules(module):
    if hasattr(layer, 'dtype') and hasattr(layer, 'param_dtype'):
      keep = any(name in str(part) for part in path for name in KEEP_FLOAT32)
      layer.dtype = jnp.float32 if keep else dtype
  return module
