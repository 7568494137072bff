"""The mixed-precision policy (`precision.compute`, models/precision.py):
bfloat16 compute in every Flax layer but the modulation layers, float32
parameters and optimiser state, float32 outputs (so the field, the losses
and DMD's score difference are float32); float32 leaves a network as it
was."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.methods import common
from drift_jax.methods import diffusion
from drift_jax.methods import drifting
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from tests import runner_helpers

SHAPE = (8, 8, 1)


def _drifting_config(generator, compute):
  c = methods.finalize(config_lib.load_config_file(
      f'configs/fashion_mnist.py:generator={generator},runlocal,size=8'))
  c.precision.compute = compute
  c.train.update(batch_size=16, gen_batch_size=16)
  return c


def _spec(generator, compute):
  return drifting.make_spec(_drifting_config(generator, compute), RunContext(
      dim=math.prod(SHAPE), mesh=parallel.make_mesh(1), image_shape=SHAPE))


def _layer_dtypes(network, params):
  """{attribute path: dtype} of every Flax layer of the network."""
  module = nnx.merge(network.graphdef, params)
  return {'/'.join(map(str, path)): layer.dtype
          for path, layer in nnx.iter_modules(module)
          if hasattr(layer, 'param_dtype')}


@pytest.mark.parametrize('network', ['conv', 'dit', 'unet'])
def test_bfloat16_layers_float32_parameters_and_outputs(network):
  if network == 'unet':
    c = _drifting_config('conv', 'bfloat16')
    net = diffusion.make_denoiser_net(c, 64, image_shape=SHAPE)
    inputs = (jnp.ones((4, 64)), jnp.ones((4,)))
  else:
    net = _spec(network, 'bfloat16').gen
    inputs = (jnp.ones((4, _drifting_config(network, 'float32')
                        .model.generator.noise_dim)),)
  params = net.init(jax.random.key(0))
  dtypes = _layer_dtypes(net, params)
  modulation = {k for k in dtypes if 'modulation' in k}
  assert {dtypes[k] for k in modulation} <= {jnp.float32}
  assert {dtypes[k] for k in set(dtypes) - modulation} == {jnp.bfloat16}
  assert {a.dtype for a in jax.tree.leaves(params)} == {jnp.dtype('float32')}
  assert net.apply(params, *inputs).dtype == jnp.float32
  text = jax.jit(net.apply).lower(params, *inputs).as_text()
  # Its matmuls and convolutions run on bfloat16 operands.
  assert re.search(r'(dot_general|convolution).*bf16', text)


def test_float32_leaves_the_network_as_it_was():
  """`compute='float32'` builds the network the runs before the policy
  built (its graph unchanged, no cast added): those runs stay
  bit-identical (record_runs)."""
  spec = _spec('conv', 'float32')
  assert spec.gen.compute_dtype is None
  plain = common.Network.create(spec.gen.build)
  assert plain.graphdef == spec.gen.graphdef


def test_a_bfloat16_drifting_step_keeps_its_state_and_field_float32():
  """One drifting step in each policy from the same weights: the state
  stays float32, and the bf16 loss is the float32 loss to bfloat16's
  precision (8 significant bits: 4e-3 relative a rounding; the
  generator's outputs differ by ~1e-2 of their largest)."""
  losses, states = {}, {}
  for compute in ('float32', 'bfloat16'):
    spec = _spec('conv', compute)
    state = drifting.init(spec, jax.random.key(0))
    data = jax.random.uniform(jax.random.key(1), (16, 64), minval=-1)
    states[compute], metrics = jax.jit(
        lambda s, d, spec=spec: drifting.train_step(spec, s, (), d,
                                                    jax.random.key(2)))(
                                                        state, data)
    losses[compute] = float(metrics['train/loss'])
  dtypes = {a.dtype for a in jax.tree.leaves(states['bfloat16'])
            if jnp.issubdtype(a.dtype, jnp.floating)}
  assert dtypes == {jnp.dtype('float32')}
  assert losses['bfloat16'] != losses['float32']  # the policy is on
  np.testing.assert_allclose(losses['bfloat16'], losses['float32'],
                             rtol=5e-2)


def test_a_bfloat16_dmd_step_runs_with_float32_state():
  c = runner_helpers.tiny_image_dmd_config(**{
      'precision.compute': 'bfloat16', 'dmd.gan_gen_weight': 0.5,
      'dmd.gan_disc_weight': 0.5})
  method, den = runner_helpers.tiny_image_dmd(c)
  assert den.compute_dtype == jnp.bfloat16
  state = method.init(jax.random.key(0))
  batch = jax.random.uniform(jax.random.key(1), (c.train.batch_size, 64))
  state, metrics = jax.jit(method.train_step)(state, method.constants, batch,
                                              jax.random.key(2))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert {a.dtype for a in jax.tree.leaves(state)
          if jnp.issubdtype(a.dtype, jnp.floating)} == {jnp.dtype('float32')}


def test_a_bad_compute_dtype_names_the_key():
  c = _drifting_config('conv', 'float16')
  with pytest.raises(ValueError, match='precision.compute'):
    methods.validate(c, 1)
