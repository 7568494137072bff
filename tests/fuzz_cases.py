"""The bad-input table of the public maths API (every function x every kind
of bad input), and the classification of what each call did.

Shared by `fuzz_test.py` (which asserts every case) and its `__main__`
(which prints the tally: `python -m tests.fuzz_cases`).

An outcome is one of
  'finite':   returned, every output finite;
  'named':    a ValueError whose message names one of the function's
              arguments in backticks (`x`, `temperature`, ...);
  'silent':   returned a non-finite value (NaN or Inf) without an error;
  'unnamed':  a ValueError that names no argument;
  'crash':    any other exception (AttributeError, TypeError, XLA's).
Only 'finite' and 'named' are acceptable.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import jax
import numpy as np

import drift_jax
from drift_jax.evaluators import sample_metrics
from drift_jax.fields import FieldSpec
from drift_jax.theory import validation

N, M, DIM = 6, 8, 3


@dataclasses.dataclass(frozen=True)
class Function:
  """A public function under test: `call(x, y, **hyper)`, its argument
  names (what an error must name) and its hyper-parameters' normal values."""
  name: str
  call: Callable
  arguments: tuple[str, ...]
  hyper: dict


def _spec_call(x, y, *, temperature=0.05, temperature_scale=None,
               pos_weights=None):
  spec = FieldSpec(temperatures=temperature, normalization='bidirectional')
  return spec(x, y, x, pos_weights=pos_weights,
              temperature_scale=temperature_scale)


def _score_difference(x, y, *, sigma=0.5):
  del y
  denoiser = lambda z, s: 0.5 * z  # noqa: E731
  return drift_jax.score_difference(denoiser, denoiser, x, sigma)


def _denoiser_to_score(x, y, *, sigma=0.5):
  return drift_jax.denoiser_to_score(y[:len(x)], x, sigma)


def _kernel_matrix(x, y, *, kernel='laplace'):
  k = drift_jax.get_kernel(kernel)
  return k(drift_jax.pairwise_sq_distances(x, y), 0.1)


FUNCTIONS = (
    Function('drifting_field',
             lambda x, y, **h: drift_jax.drifting_field(x, y, x, **h),
             ('x', 'pos', 'neg', 'temperature', 'pos_weights'),
             {'temperature': 0.05}),
    Function('drifting_field[gaussian,nw]',
             lambda x, y, **h: drift_jax.drifting_field(
                 x, y, x, kernel='gaussian', normalization='nw', **h),
             ('x', 'pos', 'neg', 'temperature', 'pos_weights'),
             {'temperature': 0.05}),
    Function('FieldSpec', _spec_call,
             ('x', 'pos', 'neg', 'temperature', 'temperatures',
              'temperature_scale', 'pos_weights'),
             {'temperature': 0.05, 'temperature_scale': np.ones(1)}),
    Function('mean_shift',
             lambda x, y, **h: drift_jax.mean_shift(x, y, **h),
             ('x', 'y', 'temperature', 'weights'), {'temperature': 0.05}),
    Function('kde_denoiser',
             lambda x, y, **h: drift_jax.kde_denoiser(x, y, **h),
             ('x', 'samples', 'sigma', 'weights'), {'sigma': 0.5}),
    Function('kde_score', lambda x, y, **h: drift_jax.kde_score(x, y, **h),
             ('x', 'samples', 'sigma', 'weights'), {'sigma': 0.5}),
    Function('companion_score',
             lambda x, y, **h: drift_jax.companion_score(x, y, **h),
             ('x', 'y', 'temperature'), {'temperature': 0.05}),
    Function('laplace_decomposition',
             lambda x, y, **h: drift_jax.laplace_decomposition(x, y, x, **h),
             ('x', 'pos', 'neg', 'temperature'), {'temperature': 0.05}),
    Function('denoiser_to_score', _denoiser_to_score,
             ('denoised', 'x_t', 'sigma'), {'sigma': 0.5}),
    Function('score_difference', _score_difference, ('x_t', 'sigma'),
             {'sigma': 0.5}),
    Function('get_kernel', _kernel_matrix, ('x', 'y', 'kernel'),
             {'kernel': 'laplace'}),
    Function('pairwise_distances',
             lambda x, y: drift_jax.pairwise_distances(x, y), ('x', 'y'), {}),
    Function('energy_distance',
             lambda x, y: sample_metrics.energy_distance(x, y), ('x', 'y'),
             {}),
    Function('mmd2', lambda x, y, **h: sample_metrics.mmd2(x, y, **h),
             ('x', 'y', 'bandwidths'), {'bandwidths': (0.5, 1.0)}),
    Function('sliced_wasserstein2',
             lambda x, y, **h: sample_metrics.sliced_wasserstein2(
                 x, y, jax.random.key(0), **h),
             ('x', 'y', 'num_projections'), {'num_projections': 16}),
    Function('wasserstein2',
             lambda x, y: sample_metrics.wasserstein2(x, y[:len(x)]),
             ('x', 'y'), {}),
    Function('frechet_distance',
             lambda x, y: sample_metrics.frechet_distance(x, y),
             ('features_a', 'features_b'), {}),
)


def _points(seed, n, dim=DIM, dtype=np.float32):
  return np.random.default_rng(seed).normal(size=(n, dim)).astype(dtype)


def _with_nan(a):
  a = a.copy()
  a[1, 0] = np.nan
  return a


def _with_inf(a):
  a = a.copy()
  a[0, 1] = np.inf
  return a


# (case name, x, y): the point arguments' bad inputs.
POINT_CASES = (
    ('nan', _with_nan(_points(0, N)), _points(1, M)),
    ('inf', _points(0, N), _with_inf(_points(1, M))),
    ('empty', np.zeros((0, DIM), np.float32), _points(1, M)),
    ('mismatched dims', _points(0, N), _points(1, M, DIM + 1)),
    ('rank 1', _points(0, N)[:, 0], _points(1, M)),
    ('integer dtype', np.arange(N * DIM).reshape(N, DIM) % 5,
     (np.arange(M * DIM).reshape(M, DIM) * 3) % 7),
    ('float64/float32 mix', _points(0, N, dtype=np.float64), _points(1, M)),
    ('values ~1e20', _points(0, N) * 1e20, _points(1, M) * 1e20),
    ('python lists', _points(0, N).tolist(), _points(1, M).tolist()),
    ('strings', [['a'] * DIM] * N, _points(1, M)),
    ('ragged lists', [[0.0] * DIM, [0.0]], _points(1, M)),
)

# Inputs inside the documented range (`drift_jax.theory.validation`) that
# every function must answer with finite values (or, for the Frechet
# distance's narrower bound on features, an error naming its argument):
# (case name, x, y, factor on every scale hyper-parameter).
IN_RANGE_CASES = (
    ('values ~1e12, scales x 1e12', _points(0, N) * 1e12,
     _points(1, M) * 1e12, 1e12),
    ('integer lists', (np.arange(N * DIM).reshape(N, DIM) % 5).tolist(),
     (np.arange(M * DIM).reshape(M, DIM) % 3).tolist(), 1.0),
    ('coincident points', np.zeros((N, DIM), np.float32),
     np.zeros((M, DIM), np.float32), 1.0),
)
SCALES = ('temperature', 'sigma', 'bandwidths')
# Scales at the ends of the documented range, on unit-scale points.
IN_RANGE_SCALES = (('smallest scale', 1e-12), ('largest scale', 1e12))

# Hyper-parameter values tried on every hyper-parameter a function has.
HYPER_VALUES = (('zero', 0.0), ('tiny', 1e-30), ('huge', 1e30),
                ('nan', float('nan')))


def _hyper_value(name, default, value):
  """`value` in the hyper-parameter's own form (tuple, array, int)."""
  if name == 'kernel':
    return None if value != value else {0.0: '', 1e-30: 'lapl', 1e30: 3}[value]
  if name == 'num_projections':
    return None if value != value else {0.0: 0, 1e-30: -1, 1e30: 2.5}[value]
  if isinstance(default, tuple):
    return (value,) * len(default)
  if isinstance(default, np.ndarray):
    return np.full_like(default, value)
  return value


def _smallest_scale(fn, x, y):
  """The smallest scale the spread rule allows for these points (1 %
  above it): log k(r^2) = -MAX_LOG_KERNEL at the bounding box's diagonal
  r, for the Gaussian kernel (sigma, or a Gaussian field) or the Laplace."""
  both = np.concatenate([x, y])
  r = float(np.linalg.norm(both.max(0) - both.min(0)))
  bound = validation.MAX_LOG_KERNEL
  gaussian = 'sigma' in fn.hyper or 'gaussian' in fn.name
  return 1.01 * (r / np.sqrt(2 * bound) if gaussian else r / bound)


def cases(in_range=False):
  """(function, case name, x, y, hyper) for every row of the bad-input
  table, or (`in_range`) of the in-range table."""
  out = []
  if in_range:
    for fn in FUNCTIONS:
      for name, x, y, factor in IN_RANGE_CASES:
        hyper = {k: (tuple(factor * b for b in v) if isinstance(v, tuple)
                     else factor * v) if k in SCALES else v
                 for k, v in fn.hyper.items()}
        out.append((fn, name, x, y, hyper))
      for key, default in fn.hyper.items():
        if key in ('kernel', 'num_projections'):
          continue
        for label, value in IN_RANGE_SCALES:
          if label == 'smallest scale' and fn.name not in (
              'denoiser_to_score', 'score_difference', 'mmd2'):
            value = _smallest_scale(fn, _points(0, N), _points(1, M))
          hyper = dict(fn.hyper, **{key: _hyper_value(key, default, value)})
          if key == 'temperature_scale':  # the scaled temperature in range
            hyper[key] = hyper[key] / fn.hyper['temperature']
          out.append((fn, f'{key} {label}', _points(0, N), _points(1, M),
                      hyper))
    return out
  for fn in FUNCTIONS:
    for name, x, y in POINT_CASES:
      out.append((fn, name, x, y, dict(fn.hyper)))
    for key, default in fn.hyper.items():
      for label, value in HYPER_VALUES:
        hyper = dict(fn.hyper, **{key: _hyper_value(key, default, value)})
        out.append((fn, f'{key}={label}', _points(0, N), _points(1, M),
                    hyper))
    if 'pos_weights' in fn.arguments or 'weights' in fn.arguments:
      key = 'pos_weights' if 'pos_weights' in fn.arguments else 'weights'
      out.append((fn, 'wrong weight shape', _points(0, N), _points(1, M),
                  dict(fn.hyper, **{key: np.ones(M + 1, np.float32)})))
  return out


def _all_finite(out) -> bool:
  leaves = jax.tree.leaves(out)
  return all(bool(np.all(np.isfinite(np.asarray(v, np.float64))))
             for v in leaves)


def outcome(fn: Function, x, y, hyper) -> tuple[str, str]:
  """(outcome, message) of one call (module docstring)."""
  try:
    out = fn.call(x, y, **hyper)
  except ValueError as e:
    message = str(e)
    names = re.findall(r'`([A-Za-z_][A-Za-z_0-9]*)`', message)
    if any(n in fn.arguments for n in names):
      return 'named', message.splitlines()[0]
    return 'unnamed', message.splitlines()[0]
  except Exception as e:  # noqa: BLE001 - the classification is the point
    return 'crash', f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'
  return ('finite', '') if _all_finite(out) else ('silent', 'non-finite')


def tally(in_range=False):
  """{outcome: count} and the rows that are not acceptable (in range:
  anything but 'finite', except the Frechet distance's named refusal)."""
  counts, bad = {}, []
  for fn, name, x, y, hyper in cases(in_range):
    result, message = outcome(fn, x, y, hyper)
    counts[result] = counts.get(result, 0) + 1
    ok = ('finite',) if in_range else ('finite', 'named')
    if in_range and fn.name == 'frechet_distance':
      ok = ('finite', 'named')
    if result not in ok:
      bad.append((fn.name, name, result, message))
  return counts, bad


if __name__ == '__main__':
  for in_range in (False, True):
    counts, bad = tally(in_range)
    for row in bad:
      print(' | '.join(row))
    label = 'in-range' if in_range else 'bad-input'
    print(f'{label}: {sum(counts.values())} cases:', counts)
