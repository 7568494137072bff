"""Several temperatures' fields combined into one (Deng et al. 2026, App.
A.6: each divided by its RMS when `normalize_drift`, in the authors'
scaled coordinates)."""

from __future__ import annotations

import jax.numpy as jnp


def _rms(v):
  return jnp.sqrt(jnp.maximum(jnp.mean(v * v), jnp.finfo(v.dtype).tiny))


def _combine_temperatures(fields, scale, spec):
  """Sums [K, N, D] per-temperature fields into V in input coordinates."""
  if not spec.normalize_drift:
    return jnp.sum(fields, axis=0)
  # RMS-normalised fields are dimensionless (unit RMS in the authors' scaled
  # coordinates); map back to input coordinates with s = S / sqrt(D).
  coord_scale = (scale / jnp.sqrt(fields.shape[-1])
                 if spec.normalize_distances else 1.0)
  return coord_scale * sum(f / _rms(f) for f in fields)
