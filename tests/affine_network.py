"""A test-only network, the smallest real one: a generator x = A z + b.

It shows what adding a network takes: this module plus one registry line
(`models.GENERATORS['affine'] = affine_network.GENERATOR`); its keys join
`model.generator` from its own entry, and the methods, runner, schema and
checkpoints need no change.
"""

from flax import nnx

from drift_jax.models.network import Network


class AffineGenerator(nnx.Module):
  """x = A z + b, z [N, noise_dim] -> x [N, dim]."""

  def __init__(self, noise_dim: int, dim: int, *, scale: float,
               rngs: nnx.Rngs):
    self.linear = nnx.Linear(
        noise_dim, dim, rngs=rngs,
        kernel_init=nnx.initializers.normal(scale / noise_dim**0.5))

  def __call__(self, z, labels=None, alpha=None):
    if labels is not None:
      raise ValueError('AffineGenerator takes no labels.')
    del alpha
    return self.linear(z)


def _validate(section):
  if not section.affine_scale > 0:
    raise ValueError('`model.generator.affine_scale` must be > 0, got '
                     f'{section.affine_scale}.')


def _build(section, *, dim, image_shape, num_classes, rngs):
  del image_shape, num_classes
  return AffineGenerator(section.noise_dim, dim,
                         scale=section.affine_scale, rngs=rngs)


GENERATOR = Network(_build, config=dict(affine_scale=1.0),
                    validate=_validate)
