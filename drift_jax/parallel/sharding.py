"""Device mesh, shardings and global batches for the training step.

The training step is one global-view `jax.jit` over a 2-D ('data', 'fsdp')
mesh. Batches are sharded on their sample axis over both axes
(`P(('data', 'fsdp'))`, every device its own rows); the trainable state is
sharded along 'fsdp' by `state_shardings` (fully sharded data parallelism,
ZeRO-3: each device keeps 1/fsdp of the parameters, EMA and optimiser
state; XLA all-gathers a weight where a layer uses it and reduce-scatters
its gradient). `mesh.fsdp = 1` is plain data parallelism with the state
replicated. Axis types are `Auto`: the compiler inserts the collectives,
and the one cross-sample gather the science cares about is written out in
`gather_global`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = 'data'
FSDP_AXIS = 'fsdp'
# The sample axis of a batch is split over both mesh axes.
BATCH_AXES = (DATA_AXIS, FSDP_AXIS)


def make_mesh(num_devices: int = -1, fsdp: int = 1) -> jax.sharding.Mesh:
  """A ('data', 'fsdp') mesh of shape (num_devices // fsdp, fsdp) over the
  first `num_devices` devices (-1: all)."""
  available = jax.device_count()
  if num_devices == -1:
    num_devices = available
  if not 1 <= num_devices <= available:
    raise ValueError(f'`mesh.num_devices` must be -1 or in [1, {available}] '
                     f'(devices visible), got {num_devices}.')
  if num_devices != available and jax.process_count() > 1:
    raise ValueError('`mesh.num_devices` must be -1 (all devices) in a '
                     'multi-process run.')
  if not isinstance(fsdp, int) or fsdp < 1 or num_devices % fsdp:
    raise ValueError(f'`mesh.fsdp` must be a positive divisor of the '
                     f'{num_devices} devices of the mesh, got {fsdp!r}.')
  return jax.make_mesh((num_devices // fsdp, fsdp), BATCH_AXES,
                       axis_types=(AxisType.Auto,) * 2,
                       devices=jax.devices()[:num_devices])


def local_mesh() -> jax.sharding.Mesh:
  """A (1, 1) mesh on this process's first device: where a frozen network
  is restored in any run, multi-host too (`make_mesh(1)` is refused there,
  and jax.devices()[0] belongs to process 0). In one process it is
  `make_mesh(1)`."""
  return jax.make_mesh((1, 1), BATCH_AXES, axis_types=(AxisType.Auto,) * 2,
                       devices=jax.local_devices()[:1])


def fsdp_size(mesh) -> int:
  """The size of the mesh's 'fsdp' axis (1: the state is replicated)."""
  return dict(mesh.shape).get(FSDP_AXIS, 1)


def leaf_spec(shape, dtype, fsdp: int) -> P:
  """The sharding rule of one state array: its largest dimension that
  `fsdp` divides is split along 'fsdp' (the first such on a tie);
  replicated when none is, when fsdp = 1, and for integer and key leaves
  (counters, PRNG keys), which are small and must stay exact."""
  if fsdp == 1 or not jnp.issubdtype(dtype, jnp.floating):
    return P()
  divisible = [(size, -axis) for axis, size in enumerate(shape)
               if size % fsdp == 0]
  if not divisible:
    return P()
  axis = -max(divisible)[1]
  return P(*([None] * axis), FSDP_AXIS)


def state_shardings(abstract_state, mesh):
  """NamedShardings of a state pytree (arrays or ShapeDtypeStructs) under
  `leaf_spec`: build it with `jax.jit(init, out_shardings=...)` over
  `jax.eval_shape(init, key)`, so it never exists unsharded."""
  fsdp = fsdp_size(mesh)
  return jax.tree.map(
      lambda a: NamedSharding(mesh, leaf_spec(a.shape, a.dtype, fsdp)),
      abstract_state)


def constant_shardings(constants, mesh):
  """NamedShardings of a method's constants (a frozen teacher's or
  encoder's weights, data arrays) under the state's rule, `leaf_spec`:
  split along 'fsdp' like the trained weights, so that a DMD2-sized
  teacher is not held whole on every device; replicated when fsdp = 1
  (the 1-D mesh's placement, unchanged)."""
  fsdp = fsdp_size(mesh)

  def sharding(a):
    dtype = a.dtype if hasattr(a, 'dtype') else np.result_type(a)
    return NamedSharding(mesh, leaf_spec(np.shape(a), dtype, fsdp))
  return jax.tree.map(sharding, constants)


def place_constants(constants, mesh):
  """A method's constants on `mesh` in `constant_shardings`. In a
  multi-process run, arrays committed to this process's device (a frozen
  network restored there) go through the host: device_put places host
  values on other processes' devices, not arrays it cannot address."""
  if jax.process_count() > 1:
    constants = jax.tree.map(
        lambda a: np.asarray(a) if isinstance(a, jax.Array)
        and not jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a,
        constants)
  return jax.device_put(constants, constant_shardings(constants, mesh))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh, leading_axes: int = 0) -> NamedSharding:
  """Shards the sample axis, after `leading_axes` unsharded ones ([k, B, D])."""
  return NamedSharding(mesh, P(*([None] * leading_axes), BATCH_AXES))


def check_divisible(name: str, size: int, mesh) -> None:
  """Global batches split evenly over devices and over processes."""
  devices = mesh.devices.size
  if size % devices:
    raise ValueError(f'`{name}` = {size} is not divisible by the number of '
                     f'devices ({devices}); choose a multiple of {devices}.')


def gather_global(x, mesh):
  """All-gather a batch-sharded array: every device sees the whole batch.

  This is where `drifting.negatives_scope='global'` pays its communication:
  the field on each device sees every device's samples, so the numbers do
  not depend on the device count.
  """
  return jax.lax.with_sharding_constraint(x, replicated(mesh))


def shard_batch(x, mesh):
  """Constrains a global batch [B, ...] to be sharded over devices."""
  return jax.lax.with_sharding_constraint(x, batch_sharding(mesh))


def per_device(fn, mesh, num_args: int):
  """`jax.shard_map` of fn over batch-sharded args and output.

  Each device applies `fn` to its own shard only, e.g. a field whose
  negatives are the device's local generated samples
  (`negatives_scope='local'`).
  """
  spec = P(BATCH_AXES)
  return jax.shard_map(fn, mesh=mesh, in_specs=(spec,) * num_args,
                       out_specs=spec)


def host_local_to_global(local: np.ndarray, mesh, leading_axes: int = 0):
  """Assembles each process's slice of a batch into one global jax.Array.

  Every process passes its own `local` rows (global // process_count of
  them, along the sample axis); on one process this is a device_put.
  """
  return jax.make_array_from_process_local_data(
      batch_sharding(mesh, leading_axes), local)


def process_slice(global_size: int) -> slice:
  """The rows of a global batch that this process loads."""
  count, index = jax.process_count(), jax.process_index()
  if global_size % count:
    raise ValueError(f'Global batch {global_size} is not divisible by the '
                     f'process count {count}.')
  local = global_size // count
  return slice(index * local, (index + 1) * local)
