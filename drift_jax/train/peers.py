"""Multi-process runs: a peer that stops answering ends the job in one line.

A process that dies mid-run breaks the next collective at once (its
connections reset; the entry point prints that error in one line and
skips JAX's shutdown barrier, which would wait for the dead peer). A
process that hangs instead (stopped, swapping, a stuck device) leaves
its peers blocked inside a collective. JAX's coordination service
notices the missing heartbeats and aborts them, but with a C++ trace
dozens of lines long. `watch` does the same in one line, first: every
process bumps a counter in the coordination service's key-value store
from a background thread, and a second thread (which makes no remote
call, so it cannot block on a stopped coordinator) stops this process
when a peer's counter, or this process's own round trip to the store,
has not moved for `timeout_s` seconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

KEY = 'drift_jax/alive/{}'
# A process's last value, once its training has ended: it may exit (or wait
# at JAX's shutdown barrier) while process 0 still writes its summary.
DONE = 'done'
# Exit status when a peer stopped answering (a failure, not a preemption:
# nothing was saved at this step; the newest checkpoint resumes the run).
EXIT_STATUS = 1


def _stop(message: str) -> None:
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(EXIT_STATUS)  # JAX's shutdown barrier would wait for the peer


class Watch:
  """The two threads of `watch`, on any key-value store with `put(key,
  value)` and `get(key) -> str | None` (the tests use a dict)."""

  def __init__(self, put: Callable, get: Callable, process: int,
               processes: int, timeout_s: float,
               stop: Callable[[str], None] = _stop):
    if timeout_s <= 0:
      raise ValueError(f'peer timeout must be > 0 seconds, got {timeout_s}')
    self.put, self.get, self.stop = put, get, stop
    self.process, self.timeout_s = process, timeout_s
    self.peers = [p for p in range(processes) if p != process]
    now = time.monotonic()
    self.seen = {p: (None, now) for p in self.peers}  # value, when it moved
    self.round_trip = now  # the last full round with the store
    self.stopped = threading.Event()

  def beat_once(self, count: int) -> None:
    """Bump this process's counter and read the peers' (remote calls)."""
    self.put(KEY.format(self.process), str(count))
    now = time.monotonic()
    for peer in self.peers:
      value = self.get(KEY.format(peer))
      if value != self.seen[peer][0]:
        self.seen[peer] = (value, now)
    self.round_trip = now

  def finish(self) -> None:
    """Ends the watch when this process's training has ended: it stops
    beating and tells its peers not to wait for its beats."""
    self.stopped.set()
    self.put(KEY.format(self.process), DONE)

  def silent(self) -> str | None:
    """What has been silent for longer than the timeout (no remote call)."""
    now = time.monotonic()
    if now - self.round_trip > self.timeout_s:
      return ('the coordination service (process 0) has not answered for '
              f'{now - self.round_trip:.0f} s')
    late = [p for p in self.peers if self.seen[p][0] != DONE
            and now - self.seen[p][1] > self.timeout_s]
    if late:
      return (f'process {late[0]} has not answered for '
              f'{now - self.seen[late[0]][1]:.0f} s')
    return None

  def start(self) -> Watch:
    period = self.timeout_s / 5

    def beat():
      count = 0
      while not self.stopped.wait(period):
        count += 1
        self.beat_once(count)

    def check():
      while not self.stopped.wait(min(period, 1.0)):
        late = self.silent()
        if late:
          self.stopped.set()
          self.stop(f'process {self.process}: {late} (it died or hangs; '
                    f'--peer_timeout={self.timeout_s:g}); stopping. Rerun '
                    'the same command on every host to resume from the '
                    'newest checkpoint.')

    for target in (beat, check):
      threading.Thread(target=target, daemon=True,
                       name=f'drift_jax_peers_{target.__name__}').start()
    return self


def watch(timeout_s: float) -> Watch | None:
  """Starts the watch in a multi-process run (after
  `jax.distributed.initialize`); None in a single process."""
  import jax
  from jax._src import distributed  # the client JAX's own utilities use
  if jax.process_count() == 1:
    return None
  client = distributed.global_state.client

  def put(key, value):
    client.key_value_set(key, value, allow_overwrite=True)

  def get(key):
    try:
      return client.key_value_try_get(key)
    except Exception:  # noqa: BLE001 -- not set yet (NOT_FOUND)
      return None

  return Watch(put, get, jax.process_index(), jax.process_count(),
               timeout_s).start()
