"""Argument checks shared by the public math functions.

Shapes are static under `jax.jit`, so shape checks run at trace time and give
the same clear `ValueError` inside and outside jit. Value checks (NaN, sign)
need concrete numbers, so they run only on concrete inputs: a traced value
cannot be inspected without a host sync, and inside a jitted training step a
NaN simply propagates to the loss, where the runner sees it (or, opt in,
`drift_jax.checked` stops it where it appears).

The documented range of the public maths functions, inside which none of
them returns a non-finite value for finite input:
  * point sets: array-likes (arrays, NumPy arrays, nested lists) of rank 2;
    integer and boolean entries are converted to JAX's default float dtype
    (float32, or float64 under `jax_enable_x64`), floats keep their dtype;
    every |entry| <= MAX_ABS_VALUE (1e15), so squared distances fit in
    float32 up to ~1e8 features;
  * scales (temperatures, noise levels sigma, MMD bandwidths): in
    [MIN_SCALE, MAX_SCALE] = [1e-12, 1e12];
  * a scale and the points it is applied to: the log kernel at the
    largest possible distance r between them (the diagonal of their
    bounding box) is at least -MAX_LOG_KERNEL (-1e8), e.g. tau >= r / 1.4e4
    for the Gaussian kernel and tau >= r / 1e8 for the Laplace (checked on
    concrete input). XLA's vectorised exp on the CPU returns NaN for
    arguments below about -2^31 (measured: the Gaussian `nw` field at
    log kernels near -1e11), so the bound keeps a factor 10 from there.
Outside it, each function refuses its input with one line naming the
argument and the value it saw.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

# Set while `drift_jax.checked` traces a function: the public maths
# functions then add a checkify check on their outputs.
_OUTPUT_CHECKS = contextvars.ContextVar('drift_jax_output_checks',
                                        default=False)


@contextlib.contextmanager
def output_checks():
  """Within the block, `checked_output` adds checkify checks to traced
  outputs (`drift_jax.checked` sets it while it traces)."""
  token = _OUTPUT_CHECKS.set(True)
  try:
    yield
  finally:
    _OUTPUT_CHECKS.reset(token)


def checked_output(name: str, out):
  """`out`, with (in `output_checks` mode, on traced values) a checkify
  check that each of its arrays is finite, naming the function `name`."""
  if not _OUTPUT_CHECKS.get():
    return out
  for leaf in jax.tree.leaves(out):
    if not is_concrete(leaf):
      bad = jnp.sum(~jnp.isfinite(leaf))
      checkify.check(bad == 0, f'`{name}` returned {{}} non-finite values '
                     '(NaN or Inf) inside jit', bad)
  return out


def is_concrete(value) -> bool:
  """True when `value` holds numbers (not a tracer inside jit/vmap/grad)."""
  return not isinstance(value, jax.core.Tracer)


MAX_ABS_VALUE = 1e15
MIN_SCALE = 1e-12
MAX_SCALE = 1e12
MAX_LOG_KERNEL = 1e8


def as_points(name: str, x, *, ndim: int = 2, allow_empty: bool = False,
              max_abs: float = MAX_ABS_VALUE):
  """`x` as a float JAX array [N, D], checked (`check_points`).

  Array-likes are accepted; integer and boolean entries become JAX's
  default float dtype (module docstring), floats keep theirs.

  Raises:
    ValueError: naming `name`, for what `check_points` refuses and for
      input that is not numeric (strings, ragged lists, complex numbers).
  """
  if not isinstance(x, jax.Array):
    try:
      arr = np.asarray(x)
    except ValueError as e:  # ragged nested lists
      raise ValueError(f'`{name}` must be a numeric array [N, D], got a '
                       f'{type(x).__name__} that is not one ({e}).') from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or arr.dtype == bool):
      raise ValueError(f'`{name}` must be a numeric array [N, D], got '
                       f'dtype {arr.dtype} ({type(x).__name__}).')
    x = arr
  if jnp.issubdtype(x.dtype, jnp.complexfloating):
    raise ValueError(f'`{name}` must be real, got dtype {x.dtype}.')
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = jnp.asarray(x, dtype=jnp.result_type(float))
  check_points(name, x, ndim=ndim, allow_empty=allow_empty, max_abs=max_abs)
  return jnp.asarray(x)


def check_points(name: str, x, *, ndim: int = 2, allow_empty: bool = False,
                 max_abs: float = MAX_ABS_VALUE):
  """Checks that `x` is an array [N, D] with finite entries of magnitude
  at most `MAX_ABS_VALUE` (`as_points` also converts).

  Raises:
    ValueError: naming `name`, for a wrong rank, an empty array or (on
      concrete input) NaN/Inf entries or entries beyond the bound.
  """
  if not hasattr(x, 'shape'):
    raise ValueError(f'`{name}` must be an array [N, D], got '
                     f'{type(x).__name__}.')
  shape = jnp.shape(x)
  if len(shape) != ndim:
    raise ValueError(
        f'`{name}` must have rank {ndim} ([N, D] samples by features), '
        f'got shape {shape}.')
  if not allow_empty and (shape[0] == 0 or shape[-1] == 0):
    raise ValueError(f'`{name}` must be non-empty, got shape {shape}.')
  if not is_concrete(x):
    return
  values = np.asarray(x)
  finite = np.isfinite(values)
  if not bool(np.all(finite)):
    first = tuple(int(i) for i in np.argwhere(~finite)[0])
    raise ValueError(
        f'`{name}` contains {int(np.sum(~finite))} NaN or Inf entries (the '
        f'first at {list(first)}: {values[first]}); drift_jax does not drop '
        'or impute non-finite samples. Clean the data before calling.')
  largest = float(np.max(np.abs(values))) if values.size else 0.0
  if largest > max_abs:
    raise ValueError(
        f'`{name}` has entries up to {largest:.3g} in magnitude, above the '
        f'documented bound {max_abs:g} (squares and products must fit in '
        'float32); rescale the data.')


def check_same_dim(names: Sequence[str], arrays: Sequence):
  """Checks that all arrays share the trailing (feature) dimension."""
  dims = [jnp.shape(a)[-1] for a in arrays]
  if len(set(dims)) > 1:
    pairs = zip(names, arrays, strict=True)
    seen = ', '.join(f'`{n}`: {jnp.shape(a)}' for n, a in pairs)
    raise ValueError(f'Feature dimensions differ ({seen}); the last axis of '
                     'every point set must be the same.')


def check_scale(name: str, value: float, shown=None):
  """A temperature, noise level or bandwidth: finite, in
  [MIN_SCALE, MAX_SCALE]; `shown` is what the message quotes."""
  shown = value if shown is None else shown
  if not math.isfinite(value) or value <= 0:
    raise ValueError(f'`{name}` must be positive and finite, got {shown!r}.')
  # The ends allow float32 rounding (1e-12 in float32 is 9.9999998e-13).
  if not MIN_SCALE * (1 - 1e-6) <= value <= MAX_SCALE * (1 + 1e-6):
    raise ValueError(f'`{name}` must be in [{MIN_SCALE:g}, {MAX_SCALE:g}] '
                     f'(the documented range of scales), got {shown!r}.')


def _gaussian_log_kernel(sq, scale):
  return -sq / (2.0 * scale * scale)


def check_spread(name: str, scales, arrays, log_kernel=_gaussian_log_kernel):
  """On concrete input: `log_kernel(r^2, scale) >= -MAX_LOG_KERNEL` for
  the smallest of `scales` and r the diagonal of the bounding box of
  `arrays` (module docstring); `log_kernel` defaults to the Gaussian's."""
  if not all(is_concrete(a) for a in arrays) or not is_concrete(scales):
    return
  smallest = float(np.min(np.asarray(scales, np.float64)))
  lo = np.min([np.min(np.asarray(a, np.float64), axis=0) for a in arrays],
              axis=0)
  hi = np.max([np.max(np.asarray(a, np.float64), axis=0) for a in arrays],
              axis=0)
  spread = float(np.linalg.norm(hi - lo))
  log_k = float(log_kernel(np.float64(spread) ** 2, smallest))
  if not log_k >= -MAX_LOG_KERNEL:
    raise ValueError(
        f'`{name}` {smallest:g} is too small for points {spread:.3g} apart: '
        f'the log kernel there would be {log_k:.3g}, below the documented '
        f'-{MAX_LOG_KERNEL:g} (XLA\'s exp is inexact far below); raise '
        f'`{name}` or rescale the points.')


def as_temperatures(temperature) -> tuple[float, ...]:
  """Returns temperatures as a non-empty tuple of floats in the
  documented range of scales (`check_scale`)."""
  if isinstance(temperature, (int, float, np.floating, np.integer)):
    temps = (float(temperature),)
  elif isinstance(temperature, (tuple, list)):
    if not all(isinstance(t, (int, float, np.floating, np.integer))
               for t in temperature):
      raise ValueError(f'`temperature` must be floats, got {temperature!r}.')
    temps = tuple(float(t) for t in temperature)
  else:
    raise ValueError(
        '`temperature` must be a Python float or a tuple of floats (it is a '
        f'static hyper-parameter), got {type(temperature).__name__}.')
  if not temps:
    raise ValueError('`temperature` must not be an empty tuple.')
  for t in temps:
    check_scale('temperature', t, temperature)
  return temps


def as_single_temperature(temperature) -> tuple[float]:
  """Like `as_temperatures`, for functions that take exactly one."""
  temps = as_temperatures(temperature)
  if len(temps) != 1:
    raise ValueError(f'`temperature` must be a single float here, got '
                     f'{temperature!r}.')
  return temps


def check_positive_scalar(name: str, value):
  """Checks a scalar (or per-sample vector) that must be a scale
  (`check_scale`: finite, in [MIN_SCALE, MAX_SCALE])."""
  if is_concrete(value):
    try:
      arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
      raise ValueError(f'`{name}` must be a positive float or array of '
                       f'them, got {value!r}.') from None
    if arr.size == 0:
      raise ValueError(f'`{name}` must not be empty, got {value!r}.')
    if np.isnan(arr).any():
      check_scale(name, float('nan'), value)
    check_scale(name, float(np.min(arr)), value)
    check_scale(name, float(np.max(arr)), value)


def check_weights(name: str, weights, n: int):
  """Checks optional non-negative sample weights of shape [n]; returns
  them as a float array (None stays None)."""
  if weights is None:
    return None
  if not isinstance(weights, jax.Array):
    weights = np.asarray(weights)
    if not np.issubdtype(weights.dtype, np.number):
      raise ValueError(f'`{name}` must be numeric, got dtype '
                       f'{weights.dtype}.')
  if not jnp.issubdtype(weights.dtype, jnp.floating):
    weights = jnp.asarray(weights, jnp.result_type(float))
  shape = jnp.shape(weights)
  if shape != (n,):
    raise ValueError(f'`{name}` must have shape ({n},) to match its samples, '
                     f'got {shape}.')
  if is_concrete(weights):
    w = np.asarray(weights)
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and np.any(w > 0)):
      raise ValueError(f'`{name}` must be finite, non-negative and not all '
                       f'zero, got values in [{np.min(w)}, {np.max(w)}].')
  return jnp.asarray(weights)


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
  """The common prologue: `x` [N, D] and samples [M, D] of one dimension,
  returned as float arrays (`as_points`)."""
  x = as_points('x', x)
  samples = as_points(samples_name, samples)
  check_same_dim(('x', samples_name), (x, samples))
  check_self_mask('exclude_self', exclude_self, x, samples)
  return x, samples


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
