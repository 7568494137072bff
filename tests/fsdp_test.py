"""The ('data', 'fsdp') mesh: the state sharded along 'fsdp'
(`parallel.state_shardings`) trains the same numbers on every mesh shape of
8 devices, holds 1/fsdp of itself per device, and a checkpoint written on
one shape resumes on another."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.data import datasets as data_lib
from drift_jax.methods import dmd
from drift_jax.methods import drifting
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from drift_jax.train import checkpoint
from drift_jax.train import prerequisites
from drift_jax.train import runner
from tests import runner_helpers

MESHES = [(8, 1), (4, 2), (2, 4), (1, 8)]
SHAPE = (8, 8, 1)
SEED = 0


def _dit_drifting_config():
  c = methods.finalize(config_lib.load_config_file(
      'configs/fashion_mnist.py:generator=dit,runlocal,size=8'))
  c.train.update(batch_size=16, gen_batch_size=16)
  return c


def _dit_drifting(mesh):
  return drifting.make(_dit_drifting_config(),
                       RunContext(dim=math.prod(SHAPE), mesh=mesh,
                                  image_shape=SHAPE))


def _dmd(mesh):
  """DMD on the 2-D ring with the exact teacher and an MLP fake score (its
  step's numbers are what the meshes must agree on; the image networks'
  compile would cost the suite four times as long)."""
  c = methods.finalize(config_lib.load_config_file(
      'configs/gmm.py:method=dmd,runlocal'))
  c.train.update(batch_size=16, gen_batch_size=16)
  teacher = prerequisites.oracle_teacher(data_lib.for_run(c).mixture)
  return dmd.make(c, RunContext(dim=2, mesh=mesh,
                                prerequisites={'teacher': teacher}))


def _batches(mesh, calls, batch_size, dim):
  """[1, B, D] real batches in [-1, 1], the same on every mesh."""
  key = jax.random.key(3)
  return [jax.device_put(
      jax.random.uniform(jax.random.fold_in(key, i),
                         (1, batch_size, dim), minval=-1),
      parallel.batch_sharding(mesh, leading_axes=1)) for i in range(calls)]


def _train(make_method, shape, batch_size, calls=3, state=None, start=0):
  """(losses, final state as numpy, step function) of `calls` chained
  steps on a (data, fsdp) = `shape` mesh of the 8 devices."""
  mesh = parallel.make_mesh(8, fsdp=shape[1])
  method = make_method(mesh)
  if state is None:
    state = runner.init_state(method, mesh, SEED)
  step_fn = runner.make_step_fn(method, mesh, SEED)
  # As the runner places them: split like the state (the teacher's weights).
  constants = jax.device_put(method.constants,
                             parallel.constant_shardings(method.constants,
                                                         mesh))
  losses = []
  dim = jax.eval_shape(lambda s: method.sample(
      s, method.constants, jax.random.key(0), 1), state).shape[-1]
  for i, batch in enumerate(_batches(mesh, start + calls, batch_size, dim)):
    if i < start:
      continue
    state, metrics = step_fn(state, constants, batch,
                             jnp.asarray(i, jnp.int32))
    losses.append(float(metrics['train/loss']))
  return np.array(losses), state, step_fn


@pytest.mark.parametrize('make_method,batch_size',
                         [(_dit_drifting, 16), (_dmd, 16)],
                         ids=['dit_drifting', 'dmd'])
def test_every_mesh_shape_trains_the_same_numbers(make_method, batch_size):
  """Three steps on each mesh shape against (8, 1)."""
  reference_losses, reference, _ = _train(make_method, MESHES[0],
                                          batch_size)
  mesh = parallel.make_mesh(8, fsdp=1)
  initial = runner.init_state(make_method(mesh), mesh, SEED)
  for shape in MESHES[1:]:
    losses, state, _ = _train(make_method, shape, batch_size)
    # The same float32 program, its reductions (the gradient's sum over
    # the batch, the matmuls of all-gathered weights) split over other
    # devices in another order: ~1e-7 relative per sum, grown by three
    # Adam steps (measured: up to 1.4e-5 on the losses).
    np.testing.assert_allclose(losses, reference_losses, rtol=1e-4,
                               err_msg=str(shape))
    # Measured: at most 3e-6 of the distance trained (both); an image
    # DMD's conv biases that a GroupNorm removes reach 3e-3 (their Adam
    # steps follow rounding noise: `runner_helpers.disagreement`).
    assert runner_helpers.disagreement(state, reference, initial) < 2e-2, shape


def test_the_state_is_split_along_fsdp():
  """Each floating leaf with a dimension the fsdp size divides is split
  along it; the per-device bytes of the state fall by the fsdp size
  (integers, keys and indivisible leaves stay whole)."""
  per_device = {}
  for _, fsdp in MESHES:
    mesh = parallel.make_mesh(8, fsdp=fsdp)
    method = _dit_drifting(mesh)
    state = runner.init_state(method, mesh, SEED)
    leaves = jax.tree.leaves(state)
    per_device[fsdp] = sum(
        leaf.addressable_shards[0].data.nbytes for leaf in leaves
        if jnp.issubdtype(leaf.dtype, jnp.floating))
    whole = sum(leaf.nbytes for leaf in leaves
                if jnp.issubdtype(leaf.dtype, jnp.floating))
    # At fsdp = 8 a few small leaves (a 4-channel bias, per-head norms)
    # are not divisible and stay whole: within 5 % of 1/fsdp.
    assert per_device[fsdp] <= 1.05 * whole / fsdp, (fsdp, per_device)
  assert per_device[8] < per_device[4] < per_device[2] < per_device[1]


@pytest.mark.parametrize('fsdp', [1, 2, 4])
def test_a_frozen_teachers_weights_are_split_like_the_state(fsdp):
  """DMD's constants (a U-Net teacher's weights) placed as the runner
  places them: per device, 1/fsdp of their floating bytes (within 10 %:
  the tiny U-Net's 4-channel biases and norms stay whole at fsdp = 4 and
  are 6 % of it); at fsdp = 1, replicated as on the 1-D mesh."""
  mesh = parallel.make_mesh(8, fsdp=fsdp)
  method, _ = runner_helpers.tiny_image_dmd(
      runner_helpers.tiny_image_dmd_config(), mesh)
  shardings = parallel.constant_shardings(method.constants, mesh)
  if fsdp == 1:
    assert all(s == parallel.replicated(mesh)
               for s in jax.tree.leaves(shardings))
  placed = [leaf for leaf in jax.tree.leaves(
      jax.device_put(method.constants, shardings))
            if jnp.issubdtype(leaf.dtype, jnp.floating)]
  whole = sum(leaf.nbytes for leaf in placed)
  per_device = sum(leaf.addressable_shards[0].data.nbytes for leaf in placed)
  assert whole / fsdp <= per_device <= 1.1 * whole / fsdp, (per_device,
                                                             whole)


def test_leaf_rule():
  f32 = jnp.float32
  assert parallel.leaf_spec((3, 128, 64), f32, 4) == jax.P(None, 'fsdp')
  assert parallel.leaf_spec((64, 64), f32, 4) == jax.P('fsdp')
  assert parallel.leaf_spec((6, 3), f32, 4) == jax.P()
  assert parallel.leaf_spec((64,), jnp.int32, 4) == jax.P()
  assert parallel.leaf_spec((64, 64), f32, 1) == jax.P()


def test_a_bad_fsdp_size_names_the_key():
  with pytest.raises(ValueError, match='mesh.fsdp'):
    parallel.make_mesh(8, fsdp=3)


def test_a_checkpoint_from_one_mesh_resumes_on_another(tmp_path):
  """Saved on (8, 1) after two steps, restored straight into (2, 4)'s
  shardings: every array is the saved one to the bit, and the next loss
  on (2, 4) is identical to that of the same state moved to (2, 4) in
  memory (and equal to (8, 1)'s next loss to float32 reduction order)."""
  _, state, _ = _train(_dit_drifting, (8, 1), 16, calls=2)
  saved = jax.device_get(state)
  manager = checkpoint.make_manager(str(tmp_path), max_to_keep=1)
  checkpoint.save(manager, 2, state)
  checkpoint.wait(manager)
  on_8x1, _, _ = _train(_dit_drifting, (8, 1), 16, calls=1, state=state,
                        start=2)
  mesh = parallel.make_mesh(8, fsdp=4)
  shardings = runner.state_shardings(_dit_drifting(mesh), mesh, SEED)
  abstract = checkpoint.abstract_like(jax.tree.map(np.asarray, saved),
                                      shardings)
  step, restored = checkpoint.restore_latest(manager, abstract)
  manager.close()
  assert step == 2
  for got, want, sharding in zip(jax.tree.leaves(restored),
                                 jax.tree.leaves(saved),
                                 jax.tree.leaves(shardings), strict=True):
    assert got.sharding == sharding
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  resumed, _, _ = _train(_dit_drifting, (2, 4), 16, calls=1,
                         state=restored, start=2)
  moved, _, _ = _train(_dit_drifting, (2, 4), 16, calls=1,
                       state=jax.device_put(saved, shardings), start=2)
  np.testing.assert_array_equal(resumed, moved)
  np.testing.assert_allclose(resumed, on_8x1, rtol=1e-5)
