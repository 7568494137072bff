"""The field's options as one checked `FieldSpec`, its resolution for a
call, the jitted evaluation and the keyword form `drifting_field`."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from drift_jax.fields import kernels as kernels_lib
from drift_jax.fields import sinkhorn_field
from drift_jax.fields.block_size import auto_block_size
from drift_jax.fields.normalizations import NORMALIZATIONS
from drift_jax.fields.resolved import _Resolved
from drift_jax.fields.resolved import _weights_or_ones
from drift_jax.fields.temperatures import _combine_temperatures
from drift_jax.theory import validation


@dataclasses.dataclass(frozen=True)
class FieldSpec:
  """The options of a drifting field, checked once (see `drifting_field`).

  Build it once (directly, or `from_config` for a run's `field` section)
  and call it on batches: `spec(x, pos, neg, pos_weights=None,
  neg_weights=None) -> V [N, D]`. A new normalisation is one function
  plus one entry in `NORMALIZATIONS`; a new kernel one entry in
  `kernels.KERNELS`.

  The spec is the schema of a run's `field` config section: the section
  is `config_section()`, same names and same defaults, so an option added
  here is an option of every run (a normalisation with options of its own
  adds them here and nowhere else). Empty values are the config's: 0
  for `block_size` (auto) and `sinkhorn_tolerance` (every iteration
  runs); None is accepted for both and means the same.

  Attributes beyond `drifting_field`'s keywords:
    precision: matmul precision of distances and kernel averages,
      'highest' (full float32 on any backend) or 'default'.
    sinkhorn_iterations, sinkhorn_tolerance: normalization='sinkhorn':
      iterations, and a tolerance on the potentials' change that may stop
      them earlier (0: every iteration runs).
  """
  kernel: str | kernels_lib.RadialKernel = 'laplace'
  temperatures: tuple[float, ...] = (0.05,)
  normalization: str = 'bidirectional'
  mask_self: bool = True
  normalize_distances: bool = False
  normalize_drift: bool = False
  affinity_floor: float = 0.0
  block_size: int | None = 0
  pos_scale: float = 1.0
  neg_scale: float = 1.0
  precision: str = 'highest'
  sinkhorn_iterations: int = 20
  sinkhorn_tolerance: float | None = 0.0
  # The chosen normalisation's own options ({name: value}; its registry
  # entry declares them and their defaults, `Normalization.options`).
  options: Any = ()
  # (Last, so positional construction keeps its meaning.)
  # Multiplies every temperature: one ordered number per temperature set,
  # so a grid over it extends at its edges (`studies.edges`) where a grid
  # over tuples cannot. Applied at construction (`temperatures` is then
  # the product and the factor 1), so a rebuilt spec never scales twice.
  temperature_factor: float = 1.0

  def __post_init__(self):
    object.__setattr__(self, 'options', _checked_options(
        self.normalization, self.options))
    # None and 0 are one empty value (the config's 0).
    if self.block_size is None:
      object.__setattr__(self, 'block_size', 0)
    if self.sinkhorn_tolerance is None:
      object.__setattr__(self, 'sinkhorn_tolerance', 0.0)
    validation.check_known_name('normalization', self.normalization,
                                NORMALIZATIONS)
    validation.check_known_name('precision', self.precision,
                                kernels_lib.PRECISIONS)
    kernels_lib.get_kernel(self.kernel)
    factor = self.temperature_factor
    if isinstance(factor, bool) or not isinstance(
        factor, (int, float)) or not 0 < factor < math.inf:
      raise ValueError('`temperature_factor` must be a positive float, got '
                       f'{factor!r}.')
    object.__setattr__(self, 'temperatures', validation.as_temperatures(
        tuple(t * factor for t in validation.as_temperatures(
            self.temperatures))))
    object.__setattr__(self, 'temperature_factor', 1.0)
    if not 0.0 <= float(self.affinity_floor) < 1.0:
      raise ValueError(f'`affinity_floor` must be in [0, 1), got '
                       f'{self.affinity_floor!r}.')
    if (self.normalization == 'sharp_companion'
        and kernels_lib.get_kernel(self.kernel).name != 'laplace'):
      raise ValueError("normalization='sharp_companion' needs the Laplace "
                       f'`kernel` (its companion psi), got {self.kernel!r}.')
    if self.affinity_floor > 0 and self.normalization != 'bidirectional':
      raise ValueError('`affinity_floor` only applies to normalization='
                       f"'bidirectional', got {self.normalization!r}.")
    if isinstance(self.block_size, bool) or not isinstance(
        self.block_size, int) or self.block_size < 0:
      raise ValueError(f'`block_size` must be 0 or None (auto) or a '
                       f'positive int, got {self.block_size!r}.')
    for name in ('pos_scale', 'neg_scale'):
      value = getattr(self, name)
      if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f'`{name}` must be a finite float, got {value!r}.')
    it, tol = self.sinkhorn_iterations, self.sinkhorn_tolerance
    if isinstance(it, bool) or not isinstance(it, int) or it < 1:
      raise ValueError(f'`sinkhorn_iterations` must be a positive int, got '
                       f'{it!r}.')
    if isinstance(tol, bool) or not (isinstance(tol, (int, float))
                                     and math.isfinite(tol) and tol >= 0):
      raise ValueError(f'`sinkhorn_tolerance` must be a positive float (or '
                       f'0 / None: run every iteration), got {tol!r}.')

  @classmethod
  def config_section(cls) -> dict:
    """The `field` config section: every option with its default, and
    every registered normalisation's own options (flat: `field.NAME`)."""
    section = {f.name: f.default for f in dataclasses.fields(cls)
               if f.name != 'options'}
    for name, entry in NORMALIZATIONS.items():
      for key, default in entry.options.items():
        if key in section:
          raise ValueError(f'Normalisation {name!r} declares option {key!r}'
                           ', which another option of the field has.')
        section[key] = default
    return section

  @classmethod
  def from_config(cls, field_config) -> FieldSpec:
    """The spec of a run config's `field` section: the spec's options and
    the chosen normalisation's own (keys the spec does not have, such as
    those of a config.json written before they moved to the drifting
    method's section, are not read)."""
    values = {f.name: field_config[f.name] for f in dataclasses.fields(cls)
              if f.name in field_config}
    values['temperatures'] = tuple(values.get('temperatures', (0.05,)))
    entry = NORMALIZATIONS.get(values.get('normalization', 'bidirectional'))
    if entry is not None:
      values['options'] = {k: field_config[k] for k in entry.options
                           if k in field_config}
    return cls(**values)

  def option(self, name: str):
    """The value of the normalisation's option `name`."""
    return dict(self.options)[name]

  def __call__(self, x, pos, neg, *, pos_weights=None, neg_weights=None,
               temperature_scale=None):
    """V(x) = V_p(x) - V_q(x) for this spec (`drifting_field`).

    `temperature_scale`: optional [K] array (traced, so a schedule never
    recompiles) multiplying each temperature: every kernel here is a
    function of r / tau, so tau s is evaluated as distances divided by s
    (`temperature_schedule`).
    """
    x, pos, neg, pos_weights, neg_weights = checked_arrays(
        x, pos, neg, pos_weights, neg_weights)
    resolved = resolve_for_call(self, x, pos, neg, pos_weights, neg_weights)
    if temperature_scale is not None:
      _check_temperature_scale(temperature_scale, self.temperatures)
    if not self.normalize_distances:
      validation.check_spread(
          'temperature', min(self.temperatures) * (
              1.0 if temperature_scale is None
              or not validation.is_concrete(temperature_scale)
              else float(np.min(np.asarray(temperature_scale)))),
          (x, pos, neg), kernels_lib.get_kernel(self.kernel))
    return validation.checked_output('drifting_field', _drifting_field(
        x, pos, neg, pos_weights, neg_weights, temperature_scale, resolved))


def checked_arrays(x, pos, neg, pos_weights=None, neg_weights=None):
  """The field's arrays as float JAX arrays, each checked and named
  (`validation.as_points`, `validation.check_weights`)."""
  x, pos, neg = (validation.as_points(name, arr) for name, arr in
                 (('x', x), ('pos', pos), ('neg', neg)))
  validation.check_same_dim(('x', 'pos', 'neg'), (x, pos, neg))
  return (x, pos, neg,
          validation.check_weights('pos_weights', pos_weights, pos.shape[0]),
          validation.check_weights('neg_weights', neg_weights, neg.shape[0]))


def _check_temperature_scale(scale, temperatures):
  """[K] factors, one per temperature; on concrete input, each scaled
  temperature in the documented range of scales."""
  if jnp.shape(scale) != (len(temperatures),):
    raise ValueError(f'`temperature_scale` must have shape '
                     f'({len(temperatures)},), one per temperature; '
                     f'got {jnp.shape(scale)}.')
  if validation.is_concrete(scale):
    for t, s in zip(temperatures, np.asarray(scale, np.float64), strict=True):
      validation.check_scale('temperature_scale', t * float(s),
                             f'{float(s)!r} (temperature {t} x {float(s)})')


def resolve_for_call(spec: FieldSpec, x, pos, neg, pos_weights=None,
            neg_weights=None) -> _Resolved:
  """Checks the arrays' shapes against `spec` and resolves it for this
  call (the kernel object, the number of positives, the block size, the
  backend); `checked_arrays` checks their values (and the weights)."""
  del pos_weights, neg_weights  # checked by `checked_arrays`
  for name, arr in (('x', x), ('pos', pos), ('neg', neg)):
    if len(jnp.shape(arr)) != 2:
      validation.check_points(name, arr)  # the message for a wrong rank
  validation.check_same_dim(('x', 'pos', 'neg'), (x, pos, neg))
  validation.check_self_mask('mask_self', spec.mask_self, x, neg,
                             allow_extra=True)
  temps = spec.temperatures
  backend = jax.default_backend()
  block_size = spec.block_size or auto_block_size(
      x.shape[0], pos.shape[0] + neg.shape[0], len(temps), x.shape[1],
      backend=backend)
  return _Resolved(
      kernels_lib.get_kernel(spec.kernel), temps, spec.normalization,
      spec.mask_self, pos.shape[0], float(spec.affinity_floor),
      bool(spec.normalize_distances), bool(spec.normalize_drift),
      int(block_size), float(spec.pos_scale), float(spec.neg_scale),
      spec.precision, accelerator=backend != 'cpu',
      sinkhorn_iterations=spec.sinkhorn_iterations,
      sinkhorn_tolerance=float(spec.sinkhorn_tolerance),
      block_fields=NORMALIZATIONS[spec.normalization].block_fields,
      options=spec.options)


def _checked_options(normalization, options) -> tuple:
  """(name, value) pairs of a normalisation's own options, sorted, with
  its defaults for the ones not given; ValueError naming an option it
  does not have or a value its `check` refuses."""
  entry = NORMALIZATIONS.get(normalization)
  given = dict(options)
  if entry is None:
    return tuple(sorted(given.items()))
  unknown = sorted(set(given) - set(entry.options))
  if unknown:
    raise ValueError(f'`options` {unknown} are not options of '
                     f'normalization={normalization!r}; it has '
                     f'{sorted(entry.options)}.')
  merged = {**entry.options, **given}
  if entry.check is not None:
    entry.check(merged)
  return tuple(sorted(merged.items()))


def sinkhorn_couplings(spec: FieldSpec, x, pos, neg):
  """The Sinkhorn couplings (P+ [N, Np], P- [N, Nn]) behind
  `spec(x, pos, neg)` for normalization='sinkhorn' (first temperature),
  from the same iterations as the field; for tests and notebooks."""
  x, pos, neg, _, _ = checked_arrays(x, pos, neg)
  return sinkhorn_field.couplings(x, pos, neg,
                                  resolve_for_call(spec, x, pos, neg))


def drifting_field(x, pos, neg, *, kernel='laplace', temperature=0.05,
                   normalization='bidirectional', mask_self=True,
                   pos_weights=None, neg_weights=None,
                   normalize_distances=False, normalize_drift=False,
                   affinity_floor=0.0, block_size=None, pos_scale=1.0,
                   neg_scale=1.0, precision='highest'):
  """The drifting field V(x) = V_p(x) - V_q(x) (Deng Alg. 2, App. A.6).

  Args:
    x: [N, D] generated samples (queries).
    pos: [Np, D] positives (data), attract.
    neg: [Nn, D] negatives (generated), repel.
    kernel: kernel name or RadialKernel; default Laplace (Deng Eq. 12).
    temperature: float or tuple of floats. Several temperatures give the sum
      of their fields (each divided by its RMS when `normalize_drift`).
    normalization: a key of `NORMALIZATIONS`: 'nw', 'row', 'bidirectional'
      or 'none' (module docstring), or a conservative field,
      'kernel_gradient', 'sharp_companion' (Laplace) or 'mmd'
      (`drift_jax.fields.conservative`), or 'sinkhorn'
      (`drift_jax.fields.sinkhorn_field`; use a `FieldSpec` to set its
      iterations and tolerance).
    mask_self: neg[i] is x[i] and is excluded for x[i] (Deng Alg. 2 step 2);
      needs Nn >= N >= 2 (negatives beyond the first N, e.g. CFG's
      unconditional samples, are never masked).
    pos_weights: optional [Np] weights; neg_weights: optional [Nn] weights.
    normalize_distances: divide distances by their weighted batch mean
      (Deng Eqs. 18-22).
    normalize_drift: divide each temperature's field by its RMS over the
      batch before summing (Deng Eqs. 23-26).
    affinity_floor: lower clip of row * col softmax before the square root;
      `bidirectional` only. 0.0 is the paper, 1e-6 the released code.
    block_size: evaluate queries in blocks of this many rows (same numbers,
      memory O(block_size (Np + Nn)) instead of O(N (Np + Nn))); None (or 0)
      picks `auto_block_size` (dense when one block holds every query).
    pos_scale, neg_scale: V = pos_scale V_p - neg_scale V_q (module
      docstring, "Antisymmetry scales"); 1.0 and 1.0 is the field.
    precision: matmul precision of the distances and kernel averages,
      'highest' (full float32 on any backend) or 'default' (the backend's:
      TF32 on GPUs, bfloat16 passes on TPUs; faster, ~1e-3 relative error).

  Returns:
    [N, D] field in input coordinates (module docstring), no gradient.
  """
  spec = FieldSpec(kernel, temperature, normalization, mask_self,
                   normalize_distances, normalize_drift, affinity_floor,
                   block_size, pos_scale, neg_scale, precision)
  return spec(x, pos, neg, pos_weights=pos_weights, neg_weights=neg_weights)


@functools.partial(jax.jit, static_argnums=(6,))
def _drifting_field(x, pos, neg, pos_weights, neg_weights, temperature_scale,
                    spec):
  """Jitted body of `drifting_field` (one compile per shape and spec)."""
  x, pos, neg = (lax.stop_gradient(a) for a in (x, pos, neg))
  w_pos = _weights_or_ones(pos_weights, pos.shape[0], x.dtype)
  w_neg = _weights_or_ones(neg_weights, neg.shape[0], x.dtype)
  targets = jnp.concatenate([pos, neg], axis=0)  # [T, D]
  w = lax.stop_gradient(jnp.concatenate([w_pos, w_neg]))  # [T]
  evaluate = NORMALIZATIONS[spec.normalization].evaluate
  factors = (None if temperature_scale is None
             else 1.0 / jnp.square(jnp.asarray(temperature_scale, x.dtype)))
  fields, scale = evaluate(x, targets, w, spec, factors)
  return _combine_temperatures(fields, scale, spec)
