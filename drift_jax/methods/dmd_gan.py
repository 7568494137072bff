"""DMD2's GAN term (Yin et al. 2024b, "Improved Distribution Matching
Distillation", Sec. 4.3): a classifier head on the fake denoiser's hidden
state tells noised real images from noised generated ones.

Both inputs are noised at sigma drawn uniformly over the Karras grid's
indices (the fake denoiser's own), and the logit is

  d(x_t, sigma) = head(h_mid(x_t, sigma)),

with h_mid the fake denoiser's middle hidden map (the U-Net's bottleneck,
`models.edm.EDMPreconditioned.hidden_states`) and the head a per-location
two-layer MLP averaged over locations. Non-saturating losses (DMD2's
softplus form):

  discriminator (head and fake denoiser): mean softplus(-d(real_t))
                                          + mean softplus(d(sg(G(z))_t)),
  generator:                              mean softplus(-d(G(z)_t)),

added to the fake denoiser's score matching with weight `dmd.gan_disc_weight`
and to the generator's distribution matching with `dmd.gan_gen_weight`
(DMD2's guidance_cls_loss_weight and gen_cls_loss_weight). The head gives
the generator a signal from real images, which distribution matching alone
reaches only through the teacher.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from drift_jax.methods import common


class GanHead(nnx.Module):
  """Logits [N] from a hidden map [N, ..., C]: Linear(C, C), SiLU,
  Linear(C, 1) at each location, averaged over the locations."""

  def __init__(self, channels: int, *, rngs: nnx.Rngs):
    self.hidden = nnx.Linear(channels, channels, rngs=rngs)
    self.out = nnx.Linear(channels, 1, rngs=rngs)

  def __call__(self, h):
    h = h.reshape(h.shape[0], -1, h.shape[-1])
    return jnp.mean(self.out(nnx.silu(self.hidden(h)))[..., 0], axis=1)


def middle_state(fake: common.Network, params, x_t, sigma, labels=None):
  """The fake denoiser's middle hidden map (the U-Net's bottleneck: its
  maps run down, middle, up, so the middle one is at the centre)."""
  states = nnx.merge(fake.graphdef, params).hidden_states(x_t, sigma,
                                                          labels=labels)
  return states[len(states) // 2]


def make_head(fake: common.Network, dim: int) -> common.Network:
  """The head for `fake`'s middle map (its width read by shape only)."""
  abstract = jax.eval_shape(fake.init, jax.random.key(0))
  h = jax.eval_shape(lambda p: middle_state(
      fake, p, jnp.zeros((1, dim)), jnp.ones((1,))), abstract)
  return common.Network.create(lambda rngs: GanHead(h.shape[-1], rngs=rngs),
                               fake.compute_dtype)


def logits(fake, head, fake_params, head_params, x_t, sigma, labels=None):
  """d(x_t, sigma) [N]."""
  return head.apply(head_params,
                    middle_state(fake, fake_params, x_t, sigma, labels))


def discriminator_loss(real_logits, fake_logits):
  """mean softplus(-d(real)) + mean softplus(d(fake)) (non-saturating)."""
  return (jnp.mean(jax.nn.softplus(-real_logits))
          + jnp.mean(jax.nn.softplus(fake_logits)))


def generator_loss(fake_logits):
  """mean softplus(-d(G(z)_t)): the generator's non-saturating GAN loss."""
  return jnp.mean(jax.nn.softplus(-fake_logits))
