"""The MAE feature encoder (`features.encoder_kind='mae'`): a finished run
of `drift_jax.methods.mae`, loaded frozen.

Its feature maps (every second block and each stage output of the ResNet
encoder, `models.mae.MAEResNet.feature_maps`) feed the multi-scale feature
sets of drifting (Deng et al. 2026 App. A.5); the decoder is not used.
"""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

from flax import nnx

from drift_jax.encoders import pretrained
from drift_jax.methods import mae as method
from drift_jax.train import reporting

NAME = 'mae'
SEED = method.ENCODER_SEED
LENGTH_KEY = 'mae.steps'


def run_config(config, seed: int, schema):
  """The MAE run a student of `config` trains first."""
  return method.run_config(config, seed, schema)


class FrozenMAE(NamedTuple):
  """A frozen MAE encoder: graph, parameters and what it cost."""
  graphdef: Any
  params: Any
  meta: dict

  def module(self, params=None):
    return nnx.merge(self.graphdef, self.params if params is None else params)

  def feature_maps(self, params, x):
    return self.module(params).feature_maps(x)

  def embedding(self, params, x):
    return self.module(params).embedding(x)


def load(directory: str, dataset, allow_unfinished: bool = False
         ) -> FrozenMAE:
  """The finished `mae` run in `directory`, checked against `dataset`
  (FileNotFoundError / ValueError naming `directory`)."""
  run = pretrained.read_run(
      directory, method.NAME,
      f'MAE directory {directory!r} holds no mae run (train one with '
      "features.encoder='train' and features.encoder_kind='mae').",
      f'Encoder {directory!r} is a {{method}} run; '
      "features.encoder_kind='mae' needs a `method=mae` run.")
  image_shape = tuple(dataset.image_shape or ())
  if len(image_shape) != 3:
    raise ValueError(f'An MAE encoder needs images; data {dataset.name!r} '
                     'has none.')
  spec = method.make_spec(run.mae, image_shape, dataset.num_classes)
  state, budget = pretrained.restore_finished(
      directory, run, 'MAE', method.abstract_state(spec), dataset.name,
      str(image_shape), allow_unfinished)
  stored = tuple(int(v) for v in state['image_shape'])
  if stored != image_shape:
    raise ValueError(f'MAE {directory!r} is for images {stored}, but data '
                     f'{dataset.name!r} has {image_shape}.')
  records = [r for r in reporting.read_metrics(directory) if method.MSE in r]
  meta = dict(image_shape=list(stored), width=run.mae.width,
              blocks=list(run.mae.blocks), steps=int(budget['steps']),
              seed=run.mae.seed,
              held_out_masked_mse=(records[-1][method.MSE] if records
                                   else float('nan')),
              seconds=float(budget['wall_seconds']))
  return FrozenMAE(spec.graphdef, state['params'], meta)
