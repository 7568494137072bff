"""The normalisation registry: one line per field
(`FieldSpec.normalization`)."""

from __future__ import annotations

from drift_jax.fields import conservative
from drift_jax.fields import sinkhorn_field
from drift_jax.fields.bidirectional import _bidirectional_fields
from drift_jax.fields.kernel_weighted import _bidirectional_block
from drift_jax.fields.kernel_weighted import _blocked_fields
from drift_jax.fields.kernel_weighted import _nw_block
from drift_jax.fields.kernel_weighted import _row_block
from drift_jax.fields.kernel_weighted import _unnormalized_block
from drift_jax.fields.resolved import Normalization

# Name -> normalisation. `nw`, `row` and `none` need only each block's own
# rows; `bidirectional` needs column sums over every query first.
NORMALIZATIONS: dict[str, Normalization] = {
    'nw': Normalization(_nw_block, _blocked_fields),
    'row': Normalization(_row_block, _blocked_fields),
    'bidirectional': Normalization(_bidirectional_block,
                                   _bidirectional_fields),
    'none': Normalization(_unnormalized_block, _blocked_fields),
    # The conservative fields (`conservative`): gradients of log-smoothed
    # densities or of the MMD witness.
    **{name: Normalization(None, conservative.conservative_fields)
       for name in conservative.CONSERVATIVE},
    # Two-sided entropic couplings (`sinkhorn_field`).
    'sinkhorn': Normalization(None, sinkhorn_field.sinkhorn_fields),
}
