"""The peer watch (`drift_jax.train.peers`) on an in-memory store.

The real store is JAX's coordination service; `python -m
experiments.multihost_demo --stop_one=hang|die` checks it with two real
processes (too slow for the suite: each start is several seconds).
"""

import threading
import time

import pytest

from drift_jax.train import peers

# The suite waits a few timeouts in all; 1 s leaves a loaded CI machine
# 0.75 s of scheduling slack between a beat and the check that follows.
TIMEOUT = 1.0


def _pair(store):
  return [peers.Watch(store.__setitem__, store.get, i, 2, TIMEOUT,
                      stop=lambda message: None) for i in range(2)]


def test_a_peer_that_keeps_beating_is_never_late():
  store = {}
  a, b = _pair(store)
  for count in range(1, 8):
    a.beat_once(count)
    b.beat_once(count)
    time.sleep(TIMEOUT / 4)
    assert a.silent() is None and b.silent() is None


def test_a_silent_peer_is_named_after_the_timeout_and_not_before():
  store = {}
  a, b = _pair(store)
  a.beat_once(1)
  b.beat_once(1)
  a.beat_once(2)  # b stops here
  assert a.silent() is None
  time.sleep(TIMEOUT * 1.5)
  a.beat_once(3)
  assert a.silent().startswith('process 1 has not answered for')


def test_a_peer_whose_training_ended_is_not_waited_for():
  """Process 1 finished (it may exit while process 0 writes its
  summary): process 0 does not stop, however long that takes."""
  store = {}
  a, b = _pair(store)
  a.beat_once(1)
  b.beat_once(1)
  b.finish()
  a.beat_once(2)
  assert b.stopped.is_set() and store[peers.KEY.format(1)] == peers.DONE
  time.sleep(TIMEOUT * 1.5)
  a.beat_once(3)
  assert a.silent() is None


def test_a_store_that_stops_answering_stops_the_process_in_one_line():
  """The beating thread blocks in a remote call forever (a stopped
  coordinator); the checking thread still stops the process, once."""
  hang, messages = threading.Event(), []

  def put(key, value):
    if value == '2':
      hang.wait()

  def get(key):  # the peer beats for as long as the store answers
    return str(time.monotonic())

  watch = peers.Watch(put, get, 1, 2, TIMEOUT, stop=messages.append).start()
  deadline = time.monotonic() + 20 * TIMEOUT
  while not messages and time.monotonic() < deadline:
    time.sleep(TIMEOUT / 10)
  time.sleep(TIMEOUT)
  hang.set()
  assert watch.stopped.is_set() and len(messages) == 1
  assert messages[0].startswith('process 1: the coordination service')
  assert '--peer_timeout=1' in messages[0]


def test_the_timeout_must_be_positive():
  with pytest.raises(ValueError, match='peer timeout'):
    peers.Watch(dict().__setitem__, dict().get, 0, 2, 0)
