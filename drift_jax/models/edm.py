"""EDM preconditioning around any denoiser backbone (Karras et al. 2022).

D(x, sigma, labels) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x,
c_noise(sigma), labels) with EDM Table 1's coefficients
(`noise.edm_preconditioning`). A denoiser subclasses `EDMPreconditioned`
and defines only its backbone F on flat inputs; the wrapper is written
once, so the MLP and the U-Net cannot drift apart. (A mixin rather than a
wrapping module keeps the parameter paths, and with them old checkpoints.)
"""

from __future__ import annotations

import math

from flax import nnx

from drift_jax.theory import noise as noise_lib
from drift_jax.theory import validation


class EDMPreconditioned(nnx.Module):
  """Base of the EDM denoisers: D(x [N, D], sigma [N] or scalar, labels=None).

  Subclasses set `self.sigma_data` and define
  `backbone(x_in [N, D], c_noise [N], labels) -> [N, D]`.
  """

  def backbone(self, x_in, c_noise, labels):
    raise NotImplementedError

  def __call__(self, x, sigma, labels=None):
    self.check_input(x)
    sigma = validation.per_sample_sigma(sigma, x.shape[0], x.dtype)
    c_skip, c_out, c_in, c_noise = noise_lib.edm_preconditioning(
        sigma, self.sigma_data)
    f = self.backbone(c_in[:, None] * x, c_noise, labels)
    return c_skip[:, None] * x + c_out[:, None] * f

  def hidden_states(self, x, sigma, labels=None):
    """The backbone's hidden feature maps [[N, H_i, W_i, C_i], ...] at
    noise level sigma, on the preconditioned input c_in(sigma) x (what
    teacher-feature drifting reads; `backbone_states`)."""
    self.check_input(x)
    sigma = validation.per_sample_sigma(sigma, x.shape[0], x.dtype)
    _, _, c_in, c_noise = noise_lib.edm_preconditioning(sigma,
                                                        self.sigma_data)
    return self.backbone_states(c_in[:, None] * x, c_noise, labels)

  def backbone_states(self, x_in, c_noise, labels):
    raise ValueError(f'{type(self).__name__} exposes no hidden feature maps '
                     '(teacher-feature drifting needs an image denoiser: '
                     "model.denoiser.name='unet' or 'dit').")

  def check_input(self, x):
    """Raises ValueError for inputs the backbone cannot take."""


class ImageDenoiser(EDMPreconditioned):
  """An EDM denoiser of flat images [N, H W C] (`self.image_shape`)."""

  def check_input(self, x):
    size = math.prod(self.image_shape)
    if x.ndim != 2 or x.shape[1] != size:
      raise ValueError(f'`x` must be flat [N, {size}] for images '
                       f'{self.image_shape}, got {x.shape}.')
