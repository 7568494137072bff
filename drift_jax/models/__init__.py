"""Flax NNX networks: generators and denoisers."""

from drift_jax.models.mlp import MLP
from drift_jax.models.mlp import EDMDenoiser
from drift_jax.models.mlp import MLPGenerator

__all__ = ['EDMDenoiser', 'MLP', 'MLPGenerator']
