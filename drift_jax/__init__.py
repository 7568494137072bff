"""drift_jax: drifting models and score-based distillation, side by side."""

from drift_jax.checked import checked
from drift_jax.fields import NORMALIZATIONS
from drift_jax.fields import drifting_field
from drift_jax.fields import mean_shift
from drift_jax.fields.kernels import KERNELS
from drift_jax.fields.kernels import get_kernel
from drift_jax.fields.kernels import pairwise_distances
from drift_jax.fields.kernels import pairwise_sq_distances
from drift_jax.theory.distributions import GaussianMixture
from drift_jax.theory.distributions import load_point_cloud
from drift_jax.theory.distributions import toy_sampler
from drift_jax.theory.scores import companion_score
from drift_jax.theory.scores import denoiser_to_score
from drift_jax.theory.scores import kde_denoiser
from drift_jax.theory.scores import kde_score
from drift_jax.theory.scores import laplace_decomposition
from drift_jax.theory.scores import score_difference

__all__ = [
    'GaussianMixture', 'KERNELS', 'NORMALIZATIONS', 'checked',
    'companion_score',
    'denoiser_to_score', 'drifting_field', 'get_kernel', 'kde_denoiser',
    'kde_score', 'laplace_decomposition', 'load_point_cloud', 'mean_shift',
    'pairwise_distances', 'pairwise_sq_distances', 'score_difference',
    'toy_sampler',
]
