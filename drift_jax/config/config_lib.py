"""Run configuration: shared schema, `key=value` arguments, start-up checks.

Config files (`configs/*.py`) define `get_config(arg)` where `arg` is the
text after the colon in `--config configs/toy2d.py:method=dmd,runlocal`
(big_vision's mini-language). This module owns the sections every method
shares and composes them with the sections each method declares
(`compose`; the registry `drift_jax.methods.base_config()` is the complete
schema). It imports no method and no model: a method's own checks live in
its module. `validate` rejects unknown keys, wrong types and impossible
combinations of the shared sections before anything is traced, with a
message naming the key.

Method-dependent defaults: a config file may set
`c.defaults_by_method.dmd.train.steps = 1000`; `finalize` applies them after
the command-line and sweep overrides, to the keys those did not set.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import pathlib

import ml_collections

from drift_jax import evaluators
from drift_jax.data import datasets as data
from drift_jax.data import images as image_data
from drift_jax.train import workdir as workdir_lib

# The default `train.divergence_factor`. Over the 320 loss trajectories on
# the machine that chose it (`python -m experiments.divergence_ratios runs
# /tmp`: the `record_runs.sh` runs, the images suite's runs, notebook 02's
# drifting and DMD runs, every test run), the largest |loss| over its
# running median was 7.8 (a DMD run at step 1500; 4.4 the next); over 293
# on another machine, with the guard's warm-up at 3 logged losses (11 runs
# of every method logging every 10 steps, the record_runs.sh runs, the
# tiny suite and a whole test run's), 12.2 (DMD with the oracle teacher at
# step 460): 100 leaves 8x room above that, and a finite blow-up (the loss
# of a good run continued at lr 3 went from 1.7 to 1.8e9) passes it at
# once.
DEFAULT_DIVERGENCE_FACTOR = 100.0

# Set by a config file: {method: {section: {key: value}}}, defaults that
# depend on the method, applied by `finalize` after every override.
DEFAULTS_BY_METHOD = 'defaults_by_method'
EVAL_SPLITS = ('test', 'validation')  # eval.split
# The evaluation of before the fixed protocol (README, "Quality bar"): each
# seed draws its own held-out and floor sets, one floor draw. Numbers
# published with it are rerun with these overrides.
PER_SEED_EVAL = {'eval.seed': -1, 'eval.floor_draws': 1}


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses 'a=1,b=x,flag' against typed defaults (bare names mean True).

  Raises:
    ValueError: for a key not in `defaults` or a value of the wrong type.
  """
  result = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, sep, value = item.partition('=')
    key = key.strip()
    if key not in defaults:
      near = difflib.get_close_matches(key, list(defaults), n=1)
      raise ValueError(f'Unknown config argument {key!r} in {arg!r}'
                       + (f' (did you mean {near[0]!r}?)' if near else '')
                       + f'; known: {sorted(defaults)}.')
    kind = type(defaults[key])
    if not sep:
      if kind is not bool:
        raise ValueError(f'Config argument {key!r} needs a value ({key}=...).')
      result[key] = True
    elif kind is bool:
      if value.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(f'Config argument {key!r} must be true/false, got '
                         f'{value!r}.')
      result[key] = value.lower() in ('true', '1')
    else:
      try:
        result[key] = kind(value)
      except ValueError:
        meaning = {int: 'an integer', float: 'a number'}.get(
            kind, f'a {kind.__name__}')
        raise ValueError(f'Config argument {key!r} must be {meaning}, got '
                         f'{value!r}.') from None
  return result


def load_module(path: str, name: str):
  """The Python file at `path` executed as a module named `name`: configs,
  suites and sweeps are loaded by path, not imported as packages (and a
  suite or sweep reads a sibling file's set-up this way)."""
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """'path/to/config.py:args' -> that file's get_config(args), as the
  --config flag of experiments/main.py would load it. A relative path is
  tried from the working directory, then from the checkout root."""
  path, _, arg = spec.partition(':')
  checkout = pathlib.Path(__file__).resolve().parents[2]  # drift_jax/config/
  in_checkout = os.path.join(checkout, path)
  if not os.path.isfile(path) and os.path.isfile(in_checkout):
    path = in_checkout  # 'configs/x.py' from outside the checkout root
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Config file {path!r} (from {spec!r}) does not '
                            'exist.')
  module = load_module(path, f'_drift_jax_config_{abs(hash(path))}')
  if not hasattr(module, 'get_config'):
    raise ValueError(f'Config file {path!r} defines no get_config().')
  return module.get_config(arg or None)


def set_by_path(config: ml_collections.ConfigDict, key: str, value) -> None:
  """config['a.b.c'] = value, for an existing dotted key only.

  Raises:
    KeyError: naming the key when any part of it is not in the config.
  """
  *parents, leaf = key.split('.')
  node = config
  for i, part in enumerate(parents):
    if part not in node or not isinstance(node[part],
                                          ml_collections.ConfigDict):
      raise KeyError(f'Unknown config key {".".join(parents[:i + 1])!r} '
                     f'(from {key!r}).')
    node = node[part]
  if leaf not in node:
    raise KeyError(f'Unknown config key {key!r}; known under '
                   f'{".".join(parents) or "the root"}: {sorted(node)}.')
  if isinstance(node[leaf], tuple) and isinstance(value, list):
    value = tuple(value)
  node[leaf] = value


def eval_section() -> dict:
  """The shared `eval` section's defaults."""
  # eval.classifier (image data): 'train' trains one into
  # workdir/classifier, 'none' skips the classifier metrics, or the
  # directory of one.
  # eval.seed: the seed of the held-out and floor-reference sets (and of a
  # finite dataset's train / held-out split); -1 follows `seed` (the
  # protocol of before the leaderboard). Fixed (the default), every run of
  # a task, whatever its seed or method, is scored on the same sets, so
  # that differences between runs are not differences of sets, and a
  # single run's number means what docs/leaderboard.md's numbers mean.
  # eval.split: 'test' (the held-out set) or 'validation' (an independent
  # draw of synthetic data, `data.validation_fraction` rows of finite data):
  # hyperparameters are chosen on validation, never on test.
  # eval.floor_draws: the floors average this many independent reference
  # draws against the one held-out set (1: the single draw of before; one
  # draw's floor varies about five-fold between draws).
  # eval.evaluators: what samples are scored with (`drift_jax.evaluators`),
  # each where the data allow it, in this order.
  # eval.sample_chunk: rows per solver call of a multi-step sampler (the
  # diffusion reference's Heun), one chunk after the other; 0: all rows at
  # once. Memory only: the same noise, the same samples.
  # eval.classifier_channels: the evaluation classifier's stages, when its
  # architecture should differ from the classifier feature encoder's
  # (`classifier.channels`); empty: the same stages, another seed.
  # eval.inception_weights: pytorch-fid's InceptionV3 weights (.pth or
  # .npz) for the `inception` evaluator (Inception FID); never downloaded.
  return dict(num_samples=5000, plot=True,
              classifier=workdir_lib.TRAIN_HERE, seed=0, split='test',
              floor_draws=10, evaluators=evaluators.DEFAULT,
              sample_chunk=0, classifier_channels=(),
              inception_weights='')


def shared_config() -> ml_collections.ConfigDict:
  """The sections every method shares, with the drifting toy recipe's
  values; the methods add their own (`compose`, `drift_jax.methods`)."""
  c = ml_collections.ConfigDict()
  c.method = 'drifting'
  c.seed = 0
  # data: the keys of every data source (`data.SOURCES`, composed by
  # `data.config_section()`). data.validation_fraction: rows of a finite
  # dataset (a file, images) set aside, after the held-out test rows, as a
  # validation split that no run trains on (`eval.split='validation'`
  # scores against it); 0: none.
  c.data = data.config_section()
  # `model` (the networks' sections) is composed by
  # `models.config_sections()` from the registered networks.
  # Class-conditional runs (for drifting with CFG, alpha ~
  # U[alpha_min, alpha_max]). The `classifier` section (the feature encoder
  # and the evaluation classifier) is the classifier method's.
  c.conditional = dict(enabled=False, alpha_min=1.0, alpha_max=2.0,
                       eval_alpha=1.0)
  # precision.compute: the trained networks' compute dtype, 'float32' or
  # 'bfloat16' (parameters, EMA and optimiser state stay float32; the
  # field and the losses are float32 either way: models/precision.py).
  c.precision = dict(compute='float32')
  # latent.autoencoder: 'none' (pixels), 'train' (an autoencoder run
  # trained first in the workdir), its directory, or 'python:FILE' (a
  # user's encoder and decoder): generators, teachers and fields work in
  # its latents, samples are decoded before scoring (encoders/latent.py).
  c.latent = dict(autoencoder='none')
  c.optim = dict(lr=1e-3, b1=0.9, b2=0.999, grad_clip=0.0,
                 schedule='constant')
  # train.divergence_factor: stop when the logged loss exceeds this multiple
  # of its running median (0: off; a non-finite loss always stops a run;
  # the default is chosen from measured runs, DEFAULT_DIVERGENCE_FACTOR).
  # train.allow_config_change: resume a workdir whose config.json differs
  # in keys other than `workdir.FREE_ON_RESUME` (the old one is kept).
  # train.allow_unfinished: load a teacher, encoder or classifier given by
  # directory even when its run stopped before its own train.steps.
  # train.wandb_project: also log to Weights & Biases under this project
  # ('' off; needs `pip install -e '.[wandb]'`, never the tests), in
  # `train.wandb_mode` ('online', 'offline' or 'disabled').
  # train.microbatches: split the batch each step trains on into this many
  # micro-batches whose gradients are accumulated (only one micro-batch's
  # activations are alive at a time); a method that supports it names the
  # batch it splits (`MICROBATCHES` in its module); 1: the whole batch.
  c.train = dict(steps=2000, batch_size=2048, gen_batch_size=2048,
                 steps_per_call=1, microbatches=1, ema_decay=0.0,
                 log_every=100,
                 eval_every=1000, checkpoint_every=1000, keep_checkpoints=3,
                 progress=True, divergence_factor=DEFAULT_DIVERGENCE_FACTOR,
                 allow_config_change=False, allow_unfinished=False,
                 wandb_project='', wandb_mode='online')
  c.eval = eval_section()
  # mesh.fsdp: the size of the mesh's 'fsdp' axis, which shards the
  # parameters, EMA and optimiser state (`parallel.state_shardings`); the
  # mesh is (num_devices // fsdp, fsdp) and batches split over both axes.
  c.mesh = dict(num_devices=-1, fsdp=1)
  c[DEFAULTS_BY_METHOD] = ml_collections.ConfigDict()
  return c


def compose(method_sections) -> ml_collections.ConfigDict:
  """The complete schema: `shared_config()` plus every registered module's
  sections (the networks' `model`, each method's own).

  Args:
    method_sections: iterable of {section: defaults} dicts, one per module;
      a section may be declared by several modules only with equal values.
  """
  c = shared_config()
  for sections in method_sections:
    for name, defaults in sections.items():
      if name in c and c[name].to_dict() != defaults:
        raise ValueError(f'Config section {name!r} is declared twice with '
                         'different defaults.')
      c[name] = dict(defaults)
  return c


def finalize(config, overridden=()) -> ml_collections.ConfigDict:
  """A copy of `config` with `config.defaults_by_method[config.method]`
  applied to every key not in `overridden` (dotted keys set on the command
  line or by a sweep), and `defaults_by_method` emptied, so that a
  finalized config is final (calling this again changes nothing).

  Also maps the legacy `eval.classifier=''` to 'train'.
  """
  c = ml_collections.ConfigDict(config.to_dict())
  per_method = c.get(DEFAULTS_BY_METHOD, ml_collections.ConfigDict())
  defaults = per_method.get(c.method, ml_collections.ConfigDict())
  overridden = set(overridden)
  for key, value in _flatten(defaults.to_dict()):
    if key not in overridden:
      set_by_path(c, key, value)
  c[DEFAULTS_BY_METHOD] = ml_collections.ConfigDict()
  if 'eval' in c and c.eval.get('classifier') == '':
    c.eval.classifier = workdir_lib.TRAIN_HERE
  return c


def _flatten(tree, prefix=''):
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _flatten(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}', value


def shared_smoke(c: ml_collections.ConfigDict) -> None:
  """The shared sections' seconds-long smoke sizes, in place (the rest of
  `methods.runlocal`: each method and network declares its own)."""
  c.train.update(steps=6, batch_size=64, gen_batch_size=64, log_every=1,
                 eval_every=3, checkpoint_every=3, progress=False)
  c.eval.num_samples = 256
  c[DEFAULTS_BY_METHOD] = ml_collections.ConfigDict()


def _unknown_keys(config, reference, prefix=''):
  for key in config.keys():
    name = f'{prefix}{key}'
    if key not in reference:
      yield name
    elif isinstance(reference[key], ml_collections.ConfigDict):
      yield from _unknown_keys(config[key], reference[key], f'{name}.')


def _type_errors(config, reference, prefix=''):
  for key in reference.keys():
    name, want = f'{prefix}{key}', reference[key]
    if key not in config:
      yield f'missing key {name!r}'
      continue
    got = config[key]
    if isinstance(want, ml_collections.ConfigDict):
      yield from _type_errors(got, want, f'{name}.')
    elif isinstance(want, bool) != isinstance(got, bool) or not isinstance(
        got, (float, int) if isinstance(want, float) else
        (tuple, list) if isinstance(want, tuple) else type(want)):
      yield (f'{name!r} must be {type(want).__name__}, got '
             f'{type(got).__name__} {got!r}')


def check_choice(name: str, value, choices) -> None:
  """Raises ValueError naming config key `name` unless value in choices."""
  if value not in choices:
    raise ValueError(f'`{name}` must be one of {tuple(choices)}, got '
                     f'{value!r}.')


def check_at_least_one(prefix: str, section, keys) -> None:
  """Raises ValueError naming `prefix.key` for the first of `keys` whose
  value in `section` is below 1 (counts, sizes, intervals)."""
  for key in keys:
    if section[key] < 1:
      raise ValueError(f'`{prefix}.{key}` must be >= 1, got '
                       f'{section[key]}.')


def check_prerequisite(name: str, value: str, extra=()) -> None:
  """A prerequisite key holds 'train', a directory, or one of `extra`."""
  if value in (workdir_lib.TRAIN_HERE, *extra) or os.path.isdir(value):
    return
  choices = ', '.join(repr(v) for v in (workdir_lib.TRAIN_HERE, *extra))
  raise ValueError(f'`{name}` must be {choices} or the directory of a '
                   f'trained one; {value!r} is neither.')


def validate(c: ml_collections.ConfigDict, device_count: int, *,
             reference: ml_collections.ConfigDict, methods) -> None:
  """Raises ValueError naming the key for anything in the shared sections
  a run cannot start with (`methods.validate` adds the method's checks).

  Args:
    c: the (finalized) run config.
    device_count: devices the batch is split over.
    reference: the complete schema (`methods.base_config()`).
    methods: the registered method names.
  """
  unknown = [k for k in _unknown_keys(c, reference)
             if not k.startswith(DEFAULTS_BY_METHOD + '.')]
  if unknown:
    raise ValueError(f'Unknown config keys: {unknown}.')
  errors = list(_type_errors(c, reference))
  if errors:
    raise ValueError('Config type errors: ' + '; '.join(errors) + '.')
  check_choice('method', c.method, tuple(methods))
  _validate_data(c)
  _validate_train(c, device_count)
  _validate_ranges(c)
  _validate_conditional(c)
  clf = c.eval.classifier
  if clf != 'none':
    check_prerequisite('eval.classifier', clf, extra=('none',))
  names = tuple(c.eval.evaluators)
  if not names:
    raise ValueError('`eval.evaluators` must name at least one of '
                     f'{tuple(evaluators.EVALUATORS)}.')
  for name in names:
    check_choice('eval.evaluators', name, tuple(evaluators.EVALUATORS))


def _validate_data(c):
  check_choice('data.name', c.data.name, tuple(data.SOURCES))
  if c.data.name != data.FILE_DATASET and data.SOURCES[
      c.data.name].needs_path and not os.path.exists(
      c.data.path):
    raise ValueError(f'`data.path` {c.data.path!r} does not exist; '
                     f'data.name={c.data.name!r} reads images from a local '
                     'path (nothing is downloaded).')
  if c.data.name == data.FILE_DATASET and not c.data.path:
    raise ValueError("`data.path` is required with data.name='file' (a .npy "
                     'or .npz holding an [N, D] array).')
  if c.data.name == data.FILE_DATASET and not os.path.isfile(c.data.path):
    raise ValueError(f'`data.path` {c.data.path!r} does not exist.')


WANDB_MODES = ('online', 'offline', 'disabled')  # train.wandb_mode
# Upper bounds on what an evaluation or a generator may ask for, checked
# before anything runs: the energy distance and MMD are O(n^2) pairwise
# (1e5 points: 1e10 pairs, minutes per evaluation on a CPU); each floor
# draw is one more such pass; 2^20 noise dimensions is a 1024 x 1024
# image. Beyond them a typo (10^9 samples: 6 GB within seconds) is meant.
MAX_EVAL_SAMPLES = 100_000
MAX_FLOOR_DRAWS = 100
MAX_NOISE_DIM = 2**20
# The fewest held-out points finite data may leave (`data.max_points` x
# `data.held_out_fraction`): below it the floors and ratios are noise
# (data.max_points=5 printed "0.37x the floor, 2 samples each").
MIN_HELD_OUT = 16


def _validate_ranges(c):
  """Keys whose values have a range, each refused in one line."""
  if not (isinstance(c.seed, int) and c.seed >= 0):
    raise ValueError(f'`seed` must be an int >= 0, got {c.seed!r}.')
  if not c.optim.grad_clip >= 0:
    raise ValueError(f'`optim.grad_clip` must be >= 0 (0: off), got '
                     f'{c.optim.grad_clip}.')
  if not 0 < c.data.held_out_fraction < 0.5:
    raise ValueError(f'`data.held_out_fraction` must be in (0, 0.5), got '
                     f'{c.data.held_out_fraction}.')
  if c.data.max_points * c.data.held_out_fraction < MIN_HELD_OUT:
    raise ValueError(
        f'`data.max_points` = {c.data.max_points} leaves '
        f'{c.data.max_points * c.data.held_out_fraction:g} held-out points '
        f'at data.held_out_fraction={c.data.held_out_fraction}; at least '
        f'{MIN_HELD_OUT} are needed for a floor that means anything.')
  if c.eval.num_samples > MAX_EVAL_SAMPLES:
    raise ValueError(f'`eval.num_samples` must be <= {MAX_EVAL_SAMPLES:,} '
                     f'(pairwise distances are O(n^2)), got '
                     f'{c.eval.num_samples:,}.')
  if c.eval.floor_draws > MAX_FLOOR_DRAWS:
    raise ValueError(f'`eval.floor_draws` must be <= {MAX_FLOOR_DRAWS}, got '
                     f'{c.eval.floor_draws:,}.')
  generator = c.model.generator
  for key in ('width', 'depth'):
    if key in generator and generator[key] < 1:
      raise ValueError(f'`model.generator.{key}` must be >= 1, got '
                       f'{generator[key]}.')
  noise_dim = generator.get('noise_dim', 1)
  if not 1 <= noise_dim <= MAX_NOISE_DIM:
    raise ValueError(f'`model.generator.noise_dim` must be in [1, '
                     f'{MAX_NOISE_DIM:,}], got {noise_dim:,}.')


def _validate_train(c, device_count):
  check_choice('train.wandb_mode', c.train.get('wandb_mode', 'online'),
               WANDB_MODES)
  check_at_least_one('train', c.train, (
      'steps', 'batch_size', 'gen_batch_size', 'steps_per_call', 'log_every',
      'eval_every', 'checkpoint_every'))
  for name in ('batch_size', 'gen_batch_size'):
    if c.train[name] % device_count:
      raise ValueError(
          f'`train.{name}` = {c.train[name]} is not divisible by the device '
          f'count ({device_count}); use a multiple of {device_count}.')
  if c.train.get('microbatches', 1) < 1:
    raise ValueError('`train.microbatches` must be >= 1, got '
                     f'{c.train.microbatches}.')
  k = c.train.steps_per_call
  for name in ('steps', 'log_every', 'eval_every', 'checkpoint_every'):
    if c.train[name] % k:
      raise ValueError(f'`train.{name}` = {c.train[name]} must be a multiple '
                       f'of `train.steps_per_call` = {k}.')
  if not c.optim.lr > 0:
    raise ValueError(f'`optim.lr` must be > 0, got {c.optim.lr}.')
  factor = c.train.divergence_factor
  if factor != 0 and not factor > 1:
    raise ValueError(f'`train.divergence_factor` must be 0 (off) or > 1, '
                     f'got {factor}.')
  if c.data.max_points < 1:
    raise ValueError(f'`data.max_points` must be >= 1, got '
                     f'{c.data.max_points}.')
  if not 0.0 <= c.train.ema_decay < 1.0:
    raise ValueError(f'`train.ema_decay` must be in [0, 1), got '
                     f'{c.train.ema_decay}.')
  if not (isinstance(c.eval.seed, int) and c.eval.seed >= -1):
    raise ValueError(f'`eval.seed` must be an int >= -1 (-1: follow `seed`), '
                     f'got {c.eval.seed!r}.')
  if c.eval.num_samples < 2:
    raise ValueError(f'`eval.num_samples` must be >= 2, got '
                     f'{c.eval.num_samples}.')
  check_choice('eval.split', c.eval.split, EVAL_SPLITS)
  if 'inception' in c.eval.evaluators and not c.eval.inception_weights:
    raise ValueError('`eval.evaluators` has inception but '
                     '`eval.inception_weights` is empty: give the path of '
                     'pytorch-fid\'s InceptionV3 weights (.pth or .npz).')
  if not (isinstance(c.eval.sample_chunk, int) and c.eval.sample_chunk >= 0):
    raise ValueError(f'`eval.sample_chunk` must be an int >= 0 (0: all '
                     f'rows at once), got {c.eval.sample_chunk!r}.')
  if not (isinstance(c.eval.floor_draws, int) and c.eval.floor_draws >= 1):
    raise ValueError(f'`eval.floor_draws` must be an int >= 1, got '
                     f'{c.eval.floor_draws!r}.')
  if not 0.0 <= c.data.validation_fraction < 0.5:
    raise ValueError(f'`data.validation_fraction` must be in [0, 0.5), got '
                     f'{c.data.validation_fraction}.')


def _validate_conditional(c):
  cond = c.conditional
  if not 1.0 <= cond.alpha_min <= cond.alpha_max:
    raise ValueError(f'Need 1 <= conditional.alpha_min <= '
                     f'conditional.alpha_max, got {cond.alpha_min}, '
                     f'{cond.alpha_max}.')
  if cond.eval_alpha < 1.0:
    raise ValueError(f'`conditional.eval_alpha` must be >= 1, got '
                     f'{cond.eval_alpha}.')
  if cond.enabled and c.data.name not in image_data.FORMATS:
    raise ValueError(f'`conditional.enabled` needs labelled image data, got '
                     f'data.name={c.data.name!r}.')


def improved_toy_training(c: ml_collections.ConfigDict) -> None:
  """Default toy training beyond the paper's demo recipe (README, "Quality
  bar", has what experiments/toy_quality.py measured with it): 5,000 steps
  with a cosine learning-rate decay and an EMA of the parameters (warmed
  up, see `methods.common.apply_gradients`): the demo recipe is still
  improving at 2,000 steps and its final iterate jitters at a constant
  learning rate. `methods.improved_toy_defaults` adds the methods' parts."""
  c.train.update(steps=5000, ema_decay=0.999)
  c.optim.schedule = 'cosine'
