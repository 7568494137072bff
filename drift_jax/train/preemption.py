"""Stopping a run cleanly on SIGTERM / SIGINT (preemption, Ctrl-C).

A handler only records the signal; the training loops (`runner`, the
classifier's) poll `requested()` after each step, save a checkpoint at that
step, wait for it and raise `Preempted`. The entry points turn that into a
one-line message and exit status `EXIT_STATUS`, so a scheduler can tell a
preempted run (rerun it: it continues the identical trajectory) from a
failed one.

Multi-process runs: a signal that reaches any one process stops them all
at the same step. Every step, the processes agree through one tiny
all-gather of "did you receive a signal" (`agreed`; a single process asks
no one), so all of them save that step together and exit 75; the save is
collective, and a process that went on training alone would wait for its
peers forever.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

# EX_TEMPFAIL (sysexits.h): "temporary failure, try again later".
EXIT_STATUS = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)

_received: list[str] = []


class Preempted(Exception):
  """Raised by a training loop after it saved a checkpoint at a signal
  (`step` is that step), or between units of work (`between`; no step)."""

  def __init__(self, signal_name: str, step: int | None, directory: str,
               message: str | None = None):
    super().__init__(message or (
        f'{signal_name} received: saved step {step} in {directory}; '
        'rerun the same command to continue.'))
    self.step = step

  @classmethod
  def between(cls, signal_name: str, before: str) -> Preempted:
    """A stop between units of work: nothing was training, so no step or
    directory was saved; every finished unit is already stored."""
    return cls(signal_name, None, '', f'{signal_name} received: stopped '
               f'before {before}; every finished run is stored; rerun the '
               'same command to continue.')


def stop_if_requested(before: str) -> None:
  """Between units of work (a comparison suite's runs): raises `Preempted`
  if a signal arrived since the outermost `handle_signals` began, so one
  that landed after a run's last step (in its final evaluation, where no
  loop polls) still stops the suite before `before` starts."""
  name = agreed()
  if name:
    raise Preempted.between(name, before)


def requested() -> str | None:
  """The name of the first signal received inside `handle_signals`, if any
  (it stays set, so an outer loop also stops after an inner one did)."""
  return _received[0] if _received else None


def agreed() -> str | None:
  """`requested()`, agreed by every process: the same answer on all of
  them at the same step (the name of this process's signal, or which
  process received one), None when none did."""
  mine = requested()
  if jax.process_count() == 1:
    return mine
  received = np.asarray(multihost_utils.process_allgather(
      np.int32(mine is not None)))
  if not received.any():
    return None
  return mine or (f'a signal to process {int(np.argmax(received))} '
                  '(of its peers)')


def _record(signum, frame):
  del frame
  _received.append(signal.Signals(signum).name)


@contextlib.contextmanager
def handle_signals():
  """Within the block, SIGTERM and SIGINT are recorded instead of killing
  the process (main thread only; elsewhere the block changes nothing).
  Nested blocks share the record; the outermost restores the handlers and
  clears it."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = {s: signal.getsignal(s) for s in SIGNALS}
  outermost = all(h is not _record for h in previous.values())
  for s in SIGNALS:
    signal.signal(s, _record)
  try:
    yield
  finally:
    if outermost:
      for s, handler in previous.items():
        signal.signal(s, handler)
      _received.clear()
