"""The layout of a run's workdir, in one place.

    workdir/
      config.json       the run's config (written at start-up)
      metrics.jsonl     one JSON record per logged step (`reporting`)
      budget.json       steps and wall seconds spent, with the checkpoints
      samples.npy       the last evaluation's samples; samples.png its plot
      checkpoints/      orbax, one folder per saved step (`checkpoint`)
      teacher/          a DMD teacher trained for this run (a whole run)
      encoder/          a feature encoder trained for this run
      classifier/       the evaluation classifier trained for this run

A prerequisite (teacher, encoder, evaluation classifier) is named in the
config by `TRAIN_HERE` ("train one in this workdir") or by the directory of
an existing one.
"""

from __future__ import annotations

import json
import os

import jax

CONFIG_FILE = 'config.json'
BUDGET_FILE = 'budget.json'
SAMPLES_FILE = 'samples.npy'
CHECKPOINT_DIR = 'checkpoints'
TEACHER_DIR = 'teacher'
ENCODER_DIR = 'encoder'
CLASSIFIER_DIR = 'classifier'

TRAIN_HERE = 'train'  # config value: train the prerequisite in the workdir


def write_json(path: str, obj) -> None:
  """Writes `obj` as indented JSON (process 0 only)."""
  if jax.process_index() == 0:
    with open(path, 'w') as f:
      json.dump(obj, f, indent=2, sort_keys=True)


def read_budget(workdir: str) -> dict:
  """Steps and wall seconds spent so far (0 for a fresh workdir)."""
  path = os.path.join(workdir, BUDGET_FILE)
  if not os.path.exists(path):
    return {'steps': 0, 'wall_seconds': 0.0}
  with open(path) as f:
    return json.load(f)


def read_config(workdir: str) -> dict:
  """The config.json of a run's workdir.

  Raises:
    FileNotFoundError naming the workdir when it holds no config.json.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'{workdir!r} has no {CONFIG_FILE}; expected the workdir of a run '
        f'({CONFIG_FILE}, {CHECKPOINT_DIR}/).')
  with open(path) as f:
    return json.load(f)
