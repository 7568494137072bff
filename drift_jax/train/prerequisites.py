"""Prerequisite runs: what a run trains or loads before its first step.

A method declares what it needs (`prerequisites(config)` in its module:
a DMD teacher, a feature encoder); the runner adds the evaluation
classifier of labelled image data. Every one of them goes through
`resolve`: 'train' (`workdir.TRAIN_HERE`) trains it into its folder of the
run's workdir (reused when finished there), a directory loads a finished
one, and `cost` says what it cost, which the runner logs under the
metrics its kind declares (`KINDS`) and charges to the run's
`time/total_wall_seconds`. A new kind of prerequisite is a resolve function
and one line in `KINDS`. Teachers and encoders are loaded read-only and
enter the step as constants, so they are never saved with the student.

Teachers, encoders and evaluation classifiers are all trained by the
runner itself, as runs of their own methods (`train_run`, passed in by the
runner, so that this module does not import it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import ml_collections

from drift_jax import encoders
from drift_jax import methods
from drift_jax.encoders import classifier as classifier_lib
from drift_jax.encoders import latent as latent_lib
from drift_jax.encoders.teacher import load_teacher
from drift_jax.methods import autoencoder as autoencoder_method
from drift_jax.methods import classifier as classifier_method
from drift_jax.methods.context import Prerequisite
from drift_jax.methods.context import Teacher
from drift_jax.train import workdir as workdir_lib


def _oracle(request, *, folder, dataset, config, num_classes, train_run):
  del request, folder, config, num_classes, train_run
  return oracle_teacher(dataset.mixture)


def _allow_unfinished(config) -> bool:
  """`train.allow_unfinished` (False for configs from before the key)."""
  return bool(config.train.get('allow_unfinished', False))


def _teacher(request, *, folder, dataset, config, num_classes, train_run):
  directory = request.choice
  if request.choice == workdir_lib.TRAIN_HERE:
    train_run(request.run_config, folder)
    directory = folder
  return load_teacher(directory, dim=dataset.dim,
                      image_shape=dataset.image_shape,
                      num_classes=num_classes,
                      allow_unfinished=_allow_unfinished(config))


def _frozen_network(module):
  """Resolves a frozen network of encoder `module` (config -> module):
  trained in `folder` as a run of its own (reused when finished there), or
  the finished one `request.choice` names, checked against `dataset`."""
  def resolve_network(request, *, folder, dataset, config, num_classes,
                      train_run):
    del num_classes
    network = module(config)
    directory = request.choice
    if request.choice == workdir_lib.TRAIN_HERE:
      directory = folder
      if getattr(network, 'needs_training', lambda _: True)(folder):
        train_run(request.run_config, folder)
    return network.load(directory, dataset,
                        allow_unfinished=_allow_unfinished(config))
  return resolve_network


def _autoencoder_run(config):
  return autoencoder_method.run_config(
      config, autoencoder_method.LATENT_SEED, methods.base_config())


def latent_request(config) -> Prerequisite | None:
  """The latent space a run of `config` trains in (None: pixels)."""
  choice = config.get('latent', {}).get('autoencoder', 'none')
  if choice == 'none':
    return None
  return with_run_config(Prerequisite('autoencoder', choice), config)


def in_latent_space(request: Prerequisite, folder: str) -> Prerequisite:
  """`request` whose run (a DMD teacher) trains in the run's latent space:
  its `latent.autoencoder='train'` becomes the run's own autoencoder
  `folder`, so that it does not train a second one."""
  run = request.run_config
  if run is None or run.get('latent', {}).get(
      'autoencoder') != workdir_lib.TRAIN_HERE:
    return request
  run = ml_collections.ConfigDict(run.to_dict())
  run.latent.autoencoder = os.path.abspath(folder)
  return request._replace(run_config=run)


def _feature_encoder(config):
  """The encoder module `features.encoder_kind` names."""
  return encoders.get(config.features.encoder_kind)


def _evaluation_classifier(config):
  """The evaluation network: always the conv classifier."""
  del config
  return classifier_lib


def _encoder_run(config):
  """The feature encoder's run (its kind's, with its kind's seed)."""
  module = _feature_encoder(config)
  return module.run_config(config, module.SEED, methods.base_config())


def _classifier_run(config):
  """The evaluation classifier's run: its own seed, and its own stages
  where `eval.classifier_channels` gives them (an architecture no
  classifier encoder of the run shares)."""
  run = classifier_lib.run_config(config, classifier_method.EVAL_SEED,
                                  methods.base_config())
  if config.eval.get('classifier_channels'):
    run.classifier.channels = tuple(config.eval.classifier_channels)
  return run


class Kind(NamedTuple):
  """A kind of prerequisite: how it is resolved, where it is trained, and
  the budget metrics its cost is charged to.

  Attributes:
    resolve: (request, *, folder, dataset, config, num_classes, train_run)
      -> the resolved prerequisite.
    folder: its folder in the run's workdir when trained there.
    cost_metrics: (steps metric, seconds metric) its training is logged
      under, None for one not logged; both None: never charged (the
      evaluation classifier measures the run, it is not part of it).
    run_config: config -> the config of the run that trains it, for a
      request that does not carry its own (None: the request's).
  """
  resolve: Callable[..., Any]
  folder: str = ''
  cost_metrics: tuple[str | None, str | None] = (None, None)
  run_config: Callable[..., Any] | None = None


TEACHER_COSTS = ('budget/teacher_steps', 'time/teacher_wall_seconds')
# One line per kind. Every run logs every kind's cost metrics (0 when it
# has none of that kind), so that tables of runs line up.
KINDS: dict[str, Kind] = {
    'oracle_teacher': Kind(_oracle, '', TEACHER_COSTS),
    'teacher': Kind(_teacher, workdir_lib.TEACHER_DIR, TEACHER_COSTS),
    'encoder': Kind(_frozen_network(_feature_encoder),
                    workdir_lib.ENCODER_DIR,
                    ('budget/encoder_steps', 'time/encoder_wall_seconds'),
                    _encoder_run),
    # The latent space's autoencoder is charged as an encoder (a run that
    # has one cannot have a feature encoder: `validate_latent`).
    'autoencoder': Kind(_frozen_network(lambda config: latent_lib),
                        workdir_lib.AUTOENCODER_DIR,
                        ('budget/encoder_steps', 'time/encoder_wall_seconds'),
                        _autoencoder_run),
    'classifier': Kind(_frozen_network(_evaluation_classifier),
                       workdir_lib.CLASSIFIER_DIR,
                       run_config=_classifier_run),
}


def with_run_config(request: Prerequisite, config) -> Prerequisite:
  """`request` with the config of the run that trains it filled in (its
  kind's, `Kind.run_config`) when it is trained here and carries none."""
  if request.kind not in KINDS:
    raise ValueError(f'Unknown prerequisite kind {request.kind!r}; known: '
                     f'{tuple(KINDS)}.')
  make_config = KINDS[request.kind].run_config
  if (request.choice != workdir_lib.TRAIN_HERE or request.run_config
      is not None or make_config is None):
    return request
  return request._replace(run_config=make_config(config))


def eval_classifier(config, dataset) -> Prerequisite | None:
  """The evaluation classifier a run of `config` on `dataset` scores its
  samples with: labelled images only, unless `eval.classifier='none'`."""
  choice = config.eval.classifier
  if (choice == 'none' or dataset.image_shape is None
      or dataset.num_classes < 2):
    return None
  return with_run_config(Prerequisite('classifier', choice), config)


def validate_runs(requests, device_count) -> None:
  """Start-up checks of the runs the `requests` will train, so that a bad
  prerequisite setting (`classifier.lr=0`) is refused before anything is
  written, not after a teacher has trained."""
  for request in requests:
    if request is not None and request.run_config is not None:
      run = request.run_config
      count = (device_count if run.mesh.num_devices == -1
               else run.mesh.num_devices)
      methods.validate(run, count)


def resolve(request: Prerequisite, *, workdir: str, dataset, config,
            num_classes: int, train_run: Callable[..., dict]):
  """The prerequisite `request` asks for, trained first if it must be.

  Args:
    request: what to resolve (kind, 'train' or a directory, run config).
    workdir: the run's workdir (a trained prerequisite goes in a folder).
    dataset: the run's data (`data.Dataset`).
    config: the run's config (`classifier` section for classifiers).
    num_classes: classes of a class-conditional run (0: none).
    train_run: `runner.train_and_evaluate`, to train a teacher run.
  """
  request = with_run_config(request, config)
  kind = KINDS[request.kind]
  return kind.resolve(request, folder=os.path.join(workdir, kind.folder),
                      dataset=dataset, config=config,
                      num_classes=num_classes, train_run=train_run)


def cost_metrics(requests: dict, resolved: dict) -> dict:
  """{budget metric: value} of what a run paid before its first step:
  every kind's cost metrics, filled from the resolved prerequisites of the
  `requests` ({name: Prerequisite}) a method declared."""
  out = {}
  for kind in KINDS.values():
    for key, zero in zip(kind.cost_metrics, (0, 0.0), strict=True):
      if key:
        out.setdefault(key, zero)
  for name, request in requests.items():
    steps_key, seconds_key = KINDS[request.kind].cost_metrics
    steps, seconds = cost(resolved[name])
    if steps_key:
      out[steps_key] = steps
    if seconds_key:
      out[seconds_key] = seconds
  return out


def seconds_paid(costs: dict) -> float:
  """The wall seconds in `cost_metrics(...)`, summed in registry order."""
  keys = dict.fromkeys(k.cost_metrics[1] for k in KINDS.values()
                       if k.cost_metrics[1])
  total = 0.0
  for key in keys:
    total += costs[key]
  return total


def oracle_teacher(mixture) -> Teacher:
  """The exact `GaussianMixture.denoiser` (Gaussian-mixture data only)."""
  if mixture is None:
    raise ValueError("The oracle teacher needs Gaussian-mixture data.")
  return Teacher(lambda params, x, s, labels=None: mixture.denoiser(x, s),
                 None)


def cost(resolved) -> tuple[int, float]:
  """(training steps, wall seconds) a resolved prerequisite cost."""
  if isinstance(resolved, Teacher):
    return resolved.steps, resolved.seconds
  if isinstance(getattr(resolved, 'meta', None), dict):  # a frozen network
    return (int(resolved.meta.get('steps', 0)),
            float(resolved.meta.get('seconds', 0.0)))
  return 0, 0.0
