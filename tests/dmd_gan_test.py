"""DMD2's GAN term (methods/dmd_gan.py): the head reads D_fake's
bottleneck, learns to tell real from generated images, and its losses reach
the generator and D_fake through one step; bad settings are refused by
name."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from drift_jax.methods import diffusion
from drift_jax.methods import dmd
from drift_jax.methods import dmd_gan
from tests import runner_helpers

SHAPE = (8, 8, 1)
DIM = 64


def _config(**dmd_keys):
  return runner_helpers.tiny_image_dmd_config(**{
      'dmd.fake_steps_per_gen': 2, 'model.denoiser.channels': (4, 8, 16),
      **{f'dmd.{k}': v for k, v in dmd_keys.items()}})


def _method(c):
  return runner_helpers.tiny_image_dmd(c)


def test_the_head_reads_the_unet_bottleneck():
  """Three levels of an 8x8 U-Net: the middle map is 2x2 at the coarsest
  width, and the head gives one logit per image."""
  den = diffusion.make_denoiser_net(_config(), DIM, image_shape=SHAPE)
  params = den.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (3, DIM))
  h = dmd_gan.middle_state(den, params, x, jnp.ones((3,)))
  assert h.shape == (3, 2, 2, 16)
  head = dmd_gan.make_head(den, DIM)
  logits = dmd_gan.logits(den, head, params, head.init(jax.random.key(2)),
                          x, jnp.ones((3,)))
  assert logits.shape == (3,)


def test_the_discriminator_learns_to_tell_real_from_generated():
  """Real images at +0.5, generated at -0.5, noised at sigma 0.1: 30 Adam
  steps on the discriminator loss take it from about 2 log 2 (chance) to
  under half of that; the generator loss of the generated side rises."""
  den = diffusion.make_denoiser_net(_config(), DIM, image_shape=SHAPE)
  head = dmd_gan.make_head(den, DIM)
  params = (den.init(jax.random.key(0)), head.init(jax.random.key(1)))
  real = 0.5 + 0.1 * jax.random.normal(jax.random.key(2), (16, DIM))
  fake = -0.5 + 0.1 * jax.random.normal(jax.random.key(3), (16, DIM))
  sigma = jnp.full((16,), 0.1)

  def losses(p):
    d = lambda x: dmd_gan.logits(den, head, p[0], p[1], x, sigma)
    return (dmd_gan.discriminator_loss(d(real), d(fake)),
            dmd_gan.generator_loss(d(fake)))

  tx = optax.adam(1e-2)
  opt = tx.init(params)
  start, gen_start = losses(params)
  # Chance (every logit 0) is 2 log 2; a random head is near it.
  assert abs(float(start) - 2 * np.log(2)) < 0.3

  @jax.jit
  def step(p, o):
    g = jax.grad(lambda p: losses(p)[0])(p)
    u, o = tx.update(g, o, p)
    return optax.apply_updates(p, u), o

  for _ in range(30):
    params, opt = step(params, opt)
  end, gen_end = losses(params)
  assert float(end) < 0.5 * float(start)
  assert float(gen_end) > float(gen_start)


def test_a_gan_step_moves_the_generator_the_fake_and_the_head_only():
  c = _config(gan_gen_weight=0.01, gan_disc_weight=0.1)
  method, _ = _method(c)
  state = method.init(jax.random.key(0))
  assert 'gan_head' in state
  batch = 0.5 * jax.random.normal(jax.random.key(1), (8, DIM))
  new, metrics = jax.jit(method.train_step)(state, method.constants, batch,
                                            jax.random.key(2))
  assert np.isfinite(float(metrics['train/gan_loss']))
  for part in ('gen', 'fake', 'gan_head'):
    moved = max(float(jnp.abs(a - b).max()) for a, b in zip(
        jax.tree.leaves(state[part]['params']),
        jax.tree.leaves(new[part]['params']), strict=True))
    assert moved > 0, part
  # The generator's GAN loss reaches its parameters: its gradient alone is
  # not zero.
  spec = method.train_step.args[0]
  z = dmd.draw_noise(spec, jax.random.key(3))
  grads = jax.grad(lambda p: dmd.generator_gan_loss(
      spec, state, spec.gen.apply(p, z), jax.random.key(4)))(
          state['gen']['params'])
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 0


def test_without_gan_weights_there_is_no_head_and_no_gan_metric():
  method, _ = _method(_config())
  state = method.init(jax.random.key(0))
  assert 'gan_head' not in state
  # Traced, not compiled: the metrics' names are all this needs.
  _, metrics = jax.eval_shape(method.train_step, state, method.constants,
                              jnp.zeros((8, DIM)), jax.random.key(2))
  assert 'train/gan_loss' not in metrics
  assert 'train/dm_loss' in metrics


@pytest.mark.parametrize('keys, match', [
    ({'dmd.gan_gen_weight': 0.01}, 'gan_disc_weight'),
    ({'dmd.gan_gen_weight': -1.0, 'dmd.gan_disc_weight': 0.1},
     'gan_gen_weight'),
    ({'dmd.gan_gen_weight': 0.01, 'dmd.gan_disc_weight': 0.1,
      'model.denoiser.name': 'mlp'}, 'image denoiser'),
])
def test_bad_gan_settings_are_refused_by_name(keys, match):
  c = _config()
  c.update_from_flattened_dict({'dmd.teacher': 'train', **keys})
  with pytest.raises(ValueError, match=match):
    dmd.validate(c)

