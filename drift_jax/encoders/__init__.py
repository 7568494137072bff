"""The feature-encoder registry: one line per kind of frozen feature network.

Feature-space drifting (`features.encoder`: 'train' or the directory of a
finished one) reads the feature maps of a frozen encoder of the kind
`features.encoder_kind` names. An encoder module provides
  NAME, and SEED: the seed of the copy a run trains as its feature encoder;
  LENGTH_KEY: the key of the student's config that sets that run's steps
    (a study that charges the encoder to drifting's budget writes it);
  run_config(config, seed, schema) -> the run (of the method that trains
    it) a student of `config` trains first, from the defaults `schema`;
  needs_training(directory) (optional) -> False for a finished directory
    that is not a run (the classifier's retired params.npz format);
  load(directory, dataset) -> a frozen network with `params`, `meta` and
    `feature_maps(params, x [N, D]) -> [maps [N, H, W, C]]`.
`drift_jax.train.prerequisites` trains and loads one through the runner.
Adding a kind is one module plus one line in `ENCODERS`.
"""

from __future__ import annotations

import types

from drift_jax.encoders import classifier
from drift_jax.encoders import mae
from drift_jax.encoders import teacher

ENCODERS: dict[str, types.ModuleType] = {
    'classifier': classifier,
    'mae': mae,
    'teacher': teacher,
}


def get(name: str) -> types.ModuleType:
  """The encoder module registered as `name` (ValueError naming
  `features.encoder_kind`)."""
  if name not in ENCODERS:
    raise ValueError(f'`features.encoder_kind` must be one of '
                     f'{tuple(ENCODERS)}, got {name!r}.')
  return ENCODERS[name]
