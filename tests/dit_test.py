"""The DiT generator and denoiser: shapes, exact zero at initialisation,
conditioning that reaches the output, and parameter counts."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from drift_jax import models
from drift_jax.models import dit

SHAPE = (28, 28, 1)


def _count(ctor):
  state = nnx.state(nnx.eval_shape(ctor), nnx.Param)
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state))


@pytest.mark.parametrize('name, release', [('B/2', 133e6), ('L/2', 463e6)])
def test_parameter_counts_match_the_release(name, release):
  # The drifting release's sizes on 32x32x4 SD-VAE latents, ImageNet's 1,000
  # classes (its table gives 133M and 463M, rounded to 1M: 2 % covers the
  # rounding and the norms' scales).
  count = _count(lambda: dit.DiTGenerator((32, 32, 4), dit.SIZES[name],
                                          num_classes=1000,
                                          rngs=nnx.Rngs(0)))
  assert abs(count / release - 1) < 0.02, count


def test_named_sizes_count_what_their_shapes_say():
  # Independent arithmetic for one block of S/2: adaLN 6D(D+1), qkv
  # 3D(D+1), proj D(D+1), SwiGLU D(2H)+2H + H D + D, 4 RMS scales.
  d, heads = 384, 6
  h = dit.swiglu_hidden(d)
  assert h == 1024  # round32(2/3 * 4 * 384) = 1024
  block = (6 * d * (d + 1) + 3 * d * (d + 1) + d * (d + 1)
           + d * 2 * h + 2 * h + h * d + d + 2 * d + 2 * (d // heads))
  count = _count(lambda: dit.DiTBlock(d, heads, nnx.Rngs(0)))
  assert count == block
  assert dit.swiglu_hidden(768) == 2048 and dit.swiglu_hidden(1024) == 2752
  sizes = {name: _count(lambda n=name: dit.DiTGenerator(
      (32, 32, 4), dit.SIZES[n], num_classes=10, rngs=nnx.Rngs(0)))
           for name in ('tiny', 'S/2', 'B/2')}
  assert sizes['tiny'] < sizes['S/2'] < sizes['B/2']


def _generator(**kwargs):
  return dit.DiTGenerator(SHAPE, dit.SIZES['tiny'], num_classes=10,
                          rngs=nnx.Rngs(0), **kwargs)


def _randomise(module, seed=1, scale=0.1):
  """Every parameter replaced by noise, so no zero-init hides a path."""
  state = nnx.state(module, nnx.Param)
  leaves, tree = jax.tree.flatten(state)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  noise = [scale * jax.random.normal(k, x.shape)
           for k, x in zip(keys, leaves, strict=True)]
  nnx.update(module, jax.tree.unflatten(tree, noise))
  return module


def test_generator_is_zero_at_initialisation_and_shaped_like_the_images():
  gen = _generator()
  z = gen.sample_noise(jax.random.key(0), 6)
  assert z.shape == (6, 784 + 32)
  out = gen(z, jnp.arange(6), jnp.full((6,), 2.0))
  assert out.shape == (6, 784)
  np.testing.assert_array_equal(out, 0.0)


def test_every_conditioning_input_changes_the_output():
  model = _randomise(_generator())
  z = model.sample_noise(jax.random.key(0), 4)
  labels, alpha = jnp.array([0, 1, 2, 3]), jnp.ones(4)
  forward = nnx.jit(lambda m, z, labels, alpha: m(z, labels, alpha))

  def gen(z, labels, alpha):
    return forward(model, z, labels, alpha)

  base = gen(z, labels, alpha)
  assert float(jnp.abs(base).max()) > 0

  def changed(other):
    return float(jnp.abs(other - base).max()) > 1e-4

  assert changed(gen(z, labels + 1, alpha))  # the class
  assert changed(gen(z, None, alpha))  # unconditional row
  assert changed(gen(z, labels, 3.0 * alpha))  # the CFG scale
  style = z.at[:, 784:].multiply(-1.0)  # other style codes, same image noise
  assert changed(gen(style, labels, alpha))
  image = z.at[:, :784].multiply(-1.0)
  assert changed(gen(image, labels, alpha))


def test_style_codes_are_uniform_over_the_codebook():
  gen = _generator()
  codes = gen.style_codes(jax.random.normal(jax.random.key(0), (20000, 32)))
  counts = np.bincount(np.asarray(codes).ravel(), minlength=64)
  assert counts.min() >= 0 and len(counts) == 64
  # 640,000 draws over 64 codes: 10,000 each, binomial sd ~99, so 5 %
  # is > 5 sd.
  np.testing.assert_allclose(counts / counts.mean(), 1.0, atol=0.05)


@pytest.mark.parametrize('policy', ['nothing', 'dots'])
def test_remat_changes_no_value_and_no_gradient(policy):
  plain = _randomise(_generator())
  remat = _randomise(_generator(remat=True, remat_policy=policy))
  z = plain.sample_noise(jax.random.key(0), 3)
  labels = jnp.array([1, 2, 3])

  def loss(model):
    return jnp.sum(model(z, labels) ** 2)

  g_plain = nnx.jit(nnx.grad(loss))(plain)
  g_remat = nnx.jit(nnx.grad(loss))(remat)
  np.testing.assert_allclose(nnx.jit(loss)(plain), nnx.jit(loss)(remat),
                             rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_remat),
                  strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
  # The policy reaches the checkpoint of every block.
  graph = str(jax.make_jaxpr(lambda m: nnx.grad(loss)(m))(remat))
  assert graph.count('remat2[') == len(remat.trunk.blocks)
  assert ('policy=DotsSaveable(only_if_no_batch_dims=True)' in graph) == (
      policy == 'dots')


def test_bfloat16_compute_stays_close_to_float32():
  f32 = _randomise(_generator())
  bf16 = _randomise(_generator(dtype=jnp.bfloat16))
  z = f32.sample_noise(jax.random.key(0), 3)
  a, b = f32(z, jnp.array([1, 2, 3])), bf16(z, jnp.array([1, 2, 3]))
  assert b.dtype == jnp.float32
  # bf16 keeps 8 mantissa bits (relative 2^-8 ~ 0.4 %) over 2 blocks.
  assert float(jnp.abs(a - b).max()) < 0.05 * float(jnp.abs(a).max())


@pytest.mark.parametrize('dtype, tolerance', [
    # float32: the same logits and softmax in another order of sums
    # (1e-7 of the output's scale measured on the CPU).
    (None, 1e-5),
    # bfloat16: q and k enter the fused call in bf16 (float32 in the
    # written-out one), a 2^-8 relative rounding of the logits' inputs on
    # a backend that keeps them apart (equal on the CPU).
    (jnp.bfloat16, 1e-2)])
def test_fused_attention_matches_the_written_out_one(dtype, tolerance):
  """`dit_attention='xla'` (`jax.nn.dot_product_attention`) gives the
  outputs and gradients of the written-out attention."""
  einsum = _randomise(_generator(dtype=dtype))
  fused = _randomise(_generator(dtype=dtype, attention='xla'))
  z = einsum.sample_noise(jax.random.key(0), 3)
  labels = jnp.array([1, 2, 3])

  def loss(model):
    return jnp.sum(model(z, labels) ** 2)

  forward = nnx.jit(lambda m: m(z, labels))
  a, b = forward(einsum), forward(fused)
  assert float(jnp.abs(a - b).max()) < tolerance * float(jnp.abs(a).max())
  if dtype is None:
    grad = nnx.jit(nnx.grad(loss))
    for ga, gb in zip(jax.tree.leaves(grad(einsum)),
                      jax.tree.leaves(grad(fused)), strict=True):
      np.testing.assert_allclose(gb, ga, rtol=1e-4, atol=1e-6)


def test_attention_and_remat_choices_are_checked():
  section = ml_collections.ConfigDict(
      models.config_sections()['model']['generator'])
  section.update(name='dit', noise_dim=816, dit_attention='flash')
  with pytest.raises(ValueError, match='dit_attention'):
    models.check_generator_config(section)
  section.update(dit_attention='einsum', dit_remat_policy='some')
  with pytest.raises(ValueError, match='dit_remat_policy'):
    models.check_generator_config(section)
  section.dit_remat_policy = 'nothing'
  if jax.default_backend() != 'gpu':
    section.dit_attention = 'cudnn'
    with pytest.raises(ValueError, match="dit_attention='cudnn'` needs"):
      models.check_generator_config(section)


def test_denoiser_is_the_skip_path_at_initialisation_and_takes_sigma():
  den = dit.DiTDenoiser(SHAPE, dit.SIZES['tiny'], num_classes=10,
                        rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(0), (4, 784))
  sigma = jnp.array([0.1, 0.5, 1.0, 5.0])
  sd = den.sigma_data
  c_skip = sd**2 / (sigma**2 + sd**2)
  np.testing.assert_allclose(den(x, sigma, jnp.arange(4)), c_skip[:, None] * x,
                             rtol=1e-6)
  _randomise(den)
  base = den(x, sigma, jnp.arange(4))
  assert float(jnp.abs(den(x, sigma * 2, jnp.arange(4)) - base).max()) > 1e-4
  assert float(jnp.abs(den(x, sigma, jnp.arange(4) + 1) - base).max()) > 1e-4
  with pytest.raises(ValueError, match='flat'):
    den(jnp.ones((2, 28, 28, 1)), 1.0)


def test_bad_shapes_and_configs_say_which_argument():
  with pytest.raises(ValueError, match='does not tile'):
    dit.DiTGenerator((30, 30, 1), dit.SIZES['tiny'], rngs=nnx.Rngs(0))
  gen = _generator()
  with pytest.raises(ValueError, match=r'must be \[N, 816\]'):
    gen(jnp.ones((2, 784)))
  section = ml_collections.ConfigDict(
      models.config_sections()['model']['generator'])
  section.name = 'dit'
  with pytest.raises(ValueError, match='noise_dim` must be H W C'):
    models.make_generator(section, 784, nnx.Rngs(0), image_shape=SHAPE)
  section.noise_dim = 816
  assert models.make_generator(section, 784, nnx.Rngs(0),
                               image_shape=SHAPE).noise_dim == 816
  section.dit_size = 'huge'
  with pytest.raises(ValueError, match='dit_size'):
    models.check_generator_config(section)
  uncond = dit.DiTGenerator(SHAPE, dit.SIZES['tiny'], rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match='unconditional'):
    uncond(uncond.sample_noise(jax.random.key(0), 2), jnp.array([0, 1]))
