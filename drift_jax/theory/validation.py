"""Argument checks shared by the public math functions.

Shapes are static under `jax.jit`, so shape checks run at trace time and give
the same clear `ValueError` inside and outside jit. Value checks (NaN, sign)
need concrete numbers, so they run only on concrete inputs: a traced value
cannot be inspected without a host sync, and inside a jitted training step a
NaN simply propagates to the loss, where the runner sees it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(value) -> bool:
  """True when `value` holds numbers (not a tracer inside jit/vmap/grad)."""
  return not isinstance(value, jax.core.Tracer)


def check_points(name: str, x, *, ndim: int = 2, allow_empty: bool = False):
  """Checks that `x` is a float array [N, D] with finite entries.

  Raises:
    ValueError: naming `name`, for a wrong rank, an empty array or (on
      concrete input) NaN/Inf entries.
  """
  shape = jnp.shape(x)
  if len(shape) != ndim:
    raise ValueError(
        f'`{name}` must have rank {ndim} ([N, D] samples by features), '
        f'got shape {shape}.')
  if not allow_empty and (shape[0] == 0 or shape[-1] == 0):
    raise ValueError(f'`{name}` must be non-empty, got shape {shape}.')
  if is_concrete(x) and not bool(np.all(np.isfinite(np.asarray(x)))):
    raise ValueError(
        f'`{name}` contains NaN or Inf; drift_jax does not drop or impute '
        'non-finite samples. Clean the data before calling.')


def check_same_dim(names: Sequence[str], arrays: Sequence):
  """Checks that all arrays share the trailing (feature) dimension."""
  dims = [jnp.shape(a)[-1] for a in arrays]
  if len(set(dims)) > 1:
    pairs = zip(names, arrays, strict=True)
    seen = ', '.join(f'{n}: {jnp.shape(a)}' for n, a in pairs)
    raise ValueError(f'Feature dimensions differ ({seen}); the last axis of '
                     'every point set must be the same.')


def as_temperatures(temperature) -> tuple[float, ...]:
  """Returns temperatures as a non-empty tuple of positive finite floats."""
  if isinstance(temperature, (int, float, np.floating, np.integer)):
    temps = (float(temperature),)
  elif isinstance(temperature, (tuple, list)):
    temps = tuple(float(t) for t in temperature)
  else:
    raise ValueError(
        '`temperature` must be a Python float or a tuple of floats (it is a '
        f'static hyper-parameter), got {type(temperature).__name__}.')
  if not temps:
    raise ValueError('`temperature` must not be an empty tuple.')
  for t in temps:
    if not (math.isfinite(t) and t > 0):
      raise ValueError(
          f'`temperature` must be positive and finite, got {temperature!r}.')
  return temps


def as_single_temperature(temperature) -> tuple[float]:
  """Like `as_temperatures`, for functions that take exactly one."""
  temps = as_temperatures(temperature)
  if len(temps) != 1:
    raise ValueError(f'`temperature` must be a single float here, got '
                     f'{temperature!r}.')
  return temps


def check_positive_scalar(name: str, value):
  """Checks a scalar (or per-sample vector) that must be > 0 and finite."""
  if is_concrete(value):
    arr = np.asarray(value)
    if not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
      raise ValueError(f'`{name}` must be positive and finite, got {value!r}.')


def check_weights(name: str, weights, n: int):
  """Checks optional non-negative sample weights of shape [n]."""
  if weights is None:
    return
  shape = jnp.shape(weights)
  if shape != (n,):
    raise ValueError(f'`{name}` must have shape ({n},) to match its samples, '
                     f'got {shape}.')
  if is_concrete(weights):
    w = np.asarray(weights)
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and np.any(w > 0)):
      raise ValueError(f'`{name}` must be finite, non-negative and not all '
                       'zero.')


def check_known_name(name: str, value: str, choices: Sequence[str]):
  """Checks that a name (a kernel, a normalisation, a network) is one of
  the known ones (`config_lib.check_choice` checks config keys)."""
  if value not in choices:
    raise ValueError(f'Unknown `{name}` {value!r}; expected one of '
                     f'{sorted(choices)}.')


def check_self_mask(name: str, enabled: bool, x, neg,
                    allow_extra: bool = False):
  """`neg[i] is x[i]` needs len(neg) == len(x) >= 2 (one is left out); with
  `allow_extra`, len(neg) >= len(x): neg[:len(x)] are the queries and the
  rest are extra negatives (CFG's unconditional samples)."""
  if not enabled:
    return
  n, m = jnp.shape(x)[0], jnp.shape(neg)[0]
  if m < n if allow_extra else m != n:
    need = 'be at least' if allow_extra else 'equal'
    raise ValueError(
        f'`{name}=True` means neg[i] is x[i], so len(neg) must {need} '
        f'len(x); got x {jnp.shape(x)} and neg {jnp.shape(neg)}.')
  if n < 2:
    raise ValueError(f'`{name}=True` needs at least 2 samples (one is left '
                     f'out), got x {jnp.shape(x)}.')


def check_queries_and_samples(x, samples_name: str, samples,
                              exclude_self: bool = False):
  """The common prologue: `x` [N, D] and samples [M, D] of one dimension."""
  check_points('x', x)
  check_points(samples_name, samples)
  check_same_dim(('x', samples_name), (x, samples))
  check_self_mask('exclude_self', exclude_self, x, samples)


def per_sample_sigma(sigma, n: int, dtype):
  """Checks a positive noise level and broadcasts a scalar or [n] to [n]."""
  check_positive_scalar('sigma', sigma)
  sigma = jnp.asarray(sigma, dtype)
  if sigma.ndim == 0:
    return jnp.broadcast_to(sigma, (n,))
  if sigma.shape != (n,):
    raise ValueError(f'`sigma` must be a scalar or have shape ({n},), got '
                     f'{sigma.shape}.')
  return sigma
