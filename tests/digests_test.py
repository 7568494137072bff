"""Checksummed checkpoints (`drift_jax.train.digests`): a checkpoint whose
arrays differ from what was saved is refused and the older one restored."""

import json
import os

import numpy as np

from drift_jax.train import digests
from drift_jax.train import runner
from drift_jax.train import workdir as workdir_lib
from tests.runner_helpers import losses
from tests.runner_helpers import tiny_config


def test_one_flipped_bit_changes_the_digest():
  state = {'a': np.arange(6, dtype=np.float32).reshape(2, 3),
           'b': {'c': np.ones(4, np.int32)}}
  before = digests.of_state(state)
  flipped = state['a'].copy()
  flipped.view(np.uint32)[1, 2] ^= 1 << 7  # one bit of one entry
  after = digests.of_state({**state, 'a': flipped})
  assert digests.mismatches(before, {**state, 'a': flipped}) == ["['a']"]
  assert before["['b']['c']"] == after["['b']['c']"]
  # The same bytes under another shape or dtype are another array.
  assert digests.of_state({'a': state['a'].reshape(3, 2)})["['a']"] != \
      before["['a']"]


def test_a_changed_checkpoint_falls_back_and_the_run_resumes_exactly(
    tmp_path):
  config = tiny_config(steps=4, checkpoint_every=2, log_every=1,
                       eval_every=4)
  workdir = str(tmp_path / 'run')
  runner.train_and_evaluate(config, workdir)
  first = losses(workdir)
  directory = os.path.join(workdir, workdir_lib.CHECKPOINT_DIR)
  # Every kept checkpoint has its digest, and only those.
  assert sorted(n for n in os.listdir(directory) if n.endswith(
      digests.SUFFIX)) == ['2' + digests.SUFFIX, '4' + digests.SUFFIX]
  # Silent damage, as the verifier sees it: the record of step 4 no longer
  # matches its arrays (a flipped bit that still parses does the same).
  path = digests.path(directory, 4)
  with open(path) as f:
    recorded = json.load(f)
  recorded[sorted(recorded)[0]] = '0' * 64
  workdir_lib.write_json(path, recorded)
  summary = runner.train_and_evaluate(config, workdir)
  assert any(n.startswith('4.corrupt') for n in os.listdir(directory))
  # Fell back to step 2 and retrained 3-4 on the same trajectory.
  assert summary['step'] == 4 and losses(workdir) == first
  assert digests.read(directory, 4) != recorded  # the new step 4's own


def test_a_checkpoint_without_a_digest_restores_unchecked(tmp_path):
  # Checkpoints written before digests existed still resume.
  workdir = str(tmp_path / 'run')
  runner.train_and_evaluate(tiny_config(steps=2, checkpoint_every=2),
                            workdir)
  directory = os.path.join(workdir, workdir_lib.CHECKPOINT_DIR)
  os.remove(digests.path(directory, 2))
  summary = runner.train_and_evaluate(
      tiny_config(steps=4, checkpoint_every=2), workdir)
  assert summary['step'] == 4
  assert not [n for n in os.listdir(directory) if 'corrupt' in n]
