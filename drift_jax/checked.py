"""An opt-in checked mode: non-finite values caught inside `jax.jit`.

The public maths functions check their input before tracing (shapes at
trace time, values on concrete input; `drift_jax.theory.validation`).
Inside a jitted function their inputs are tracers, so a NaN there passes
silently to the output. `checked(fn)` runs `fn` jitted under
`jax.experimental.checkify` with

  * `checkify.nan_checks`: a NaN produced by any primitive, inside the
    library or not, names that primitive;
  * the library's own output checks: each public maths function reports
    an output with NaN or Inf entries (which NaN checks alone miss: an
    overflow to Inf produces no NaN), naming the function;

and raises `FloatingPointError` with the first failure's message. Outside
`checked`, the output checks are not traced at all, so normal runs pay
nothing.

    step = drift_jax.checked(my_step)   # instead of jax.jit(my_step)
    out = step(x, pos, neg)             # FloatingPointError on a NaN
"""

from __future__ import annotations

import functools

import jax
from jax.experimental import checkify

from drift_jax.theory import validation

ERRORS = checkify.nan_checks | checkify.user_checks


def checked(fn):
  """`fn` jitted and checkified (module docstring); the checked function
  returns what `fn` returns, or raises FloatingPointError."""
  checkified = jax.jit(checkify.checkify(_traced_checked(fn), errors=ERRORS))

  @functools.wraps(fn)
  def run(*args, **kwargs):
    error, out = checkified(*args, **kwargs)
    message = error.get()
    if message:
      raise FloatingPointError(
          f'{getattr(fn, "__name__", "function")}: '
          f'{message.splitlines()[0]}')
    return out
  return run


def _traced_checked(fn):
  """`fn` traced with the library's output checks switched on."""
  @functools.wraps(fn)
  def traced(*args, **kwargs):
    with validation.output_checks():
      return fn(*args, **kwargs)
  return traced
