"""A test-only field normalisation with an option of its own: the
Nadaraya-Watson field scaled by `nw_gain` (one module plus one registry
line, like a real one; tests/new_field_test.py registers and runs it)."""

from drift_jax.fields.kernel_weighted import _blocked_fields
from drift_jax.fields.kernel_weighted import _nw_block
from drift_jax.fields.resolved import Normalization

NAME = 'scaled_nw'


def _scaled_nw_block(logk, targets, w, spec, col_lse, xb):
  """`nw`'s block times the option `nw_gain`."""
  return spec.option('nw_gain') * _nw_block(logk, targets, w, spec, col_lse,
                                            xb)


def _check(options):
  if not options['nw_gain'] > 0:
    raise ValueError(f'`nw_gain` must be > 0, got {options["nw_gain"]!r}.')


# The registry line, as it would stand in `fields/normalizations.py`.
NORMALIZATION = Normalization(_scaled_nw_block, _blocked_fields,
                              options={'nw_gain': 1.0}, check=_check)
