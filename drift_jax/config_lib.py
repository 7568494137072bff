"""Run configuration: schema, `key=value` arguments and start-up checks.

Config files (`configs/*.py`) define `get_config(arg)` where `arg` is the
text after the colon in `--config configs/toy2d.py:method=dmd,runlocal`
(big_vision's mini-language). `base_config()` is the complete schema every
config starts from; `validate` rejects unknown keys, wrong types and
impossible combinations before anything is traced, with a message naming
the key.
"""

from __future__ import annotations

import importlib.util
import os

import ml_collections

from drift_jax import data
from drift_jax import distributions
from drift_jax import fields
from drift_jax import image_data
from drift_jax import kernels
from drift_jax import methods
from drift_jax.methods import common
from drift_jax.methods import dmd
from drift_jax.methods import drifting
from drift_jax.models import mlp

METHODS = tuple(methods.METHODS)
TEACHER_CHOICES = ('oracle', 'train')  # or a path to a diffusion workdir


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
      raise ValueError(f'Unknown config argument {key!r} in {arg!r}; '
                       f'known: {sorted(defaults)}.')
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
        raise ValueError(f'Config argument {key!r} must be a '
                         f'{kind.__name__}, got {value!r}.') from None
  return result


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """'path/to/config.py:args' -> that file's get_config(args), as the
  --config flag of experiments/main.py would load it. A relative path is
  tried from the working directory, then from the checkout root."""
  path, _, arg = spec.partition(':')
  in_checkout = os.path.join(os.path.dirname(os.path.dirname(__file__)), path)
  if not os.path.isfile(path) and os.path.isfile(in_checkout):
    path = in_checkout  # 'configs/x.py' from outside the checkout root
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Config file {path!r} (from {spec!r}) does not '
                            'exist.')
  module_spec = importlib.util.spec_from_file_location(
      f'_drift_jax_config_{abs(hash(path))}', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
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


def base_config() -> ml_collections.ConfigDict:
  """Every key a run understands, with the drifting toy recipe's values."""
  c = ml_collections.ConfigDict()
  c.method = 'drifting'
  c.seed = 0
  c.data = dict(name='checkerboard', path='', key='', held_out_fraction=0.2,
                dim=2, num_components=8, radius=1.0, std=0.08,
                mixture_seed=0, image_size=8)
  c.model = dict(
      generator=dict(name='mlp', noise_dim=32, width=256, depth=3,
                     init='lecun', init_offset=(), init_scale=1.0,
                     channels=(64, 32)),
      denoiser=dict(name='mlp', width=256, depth=3, channels=(32, 64)))
  # Image runs: the feature encoder of feature-space drifting ('none': raw
  # samples; 'train': trained into workdir/encoder; or its directory), the
  # classifier both it and the evaluation classifier are trained with, and
  # class-conditional drifting with CFG (alpha ~ U[alpha_min, alpha_max]).
  c.features = dict(encoder='none', raw=True, patch_sizes=(2, 4))
  c.classifier = dict(channels=(32, 64), steps=1500, batch_size=128,
                      lr=2e-3)
  c.conditional = dict(enabled=False, alpha_min=1.0, alpha_max=2.0,
                       eval_alpha=1.0)
  c.optim = dict(lr=1e-3, b1=0.9, b2=0.999, grad_clip=0.0,
                 schedule='constant')
  c.field = dict(kernel='laplace', temperatures=(0.05,),
                 normalization='bidirectional', mask_self=True,
                 normalize_distances=False, normalize_drift=False,
                 affinity_floor=0.0, negatives_scope='global', block_size=0,
                 pos_scale=1.0, neg_scale=1.0)
  c.diffusion = dict(sigma_min=0.002, sigma_max=80.0, rho=7.0,
                     sigma_data=0.5, p_mean=-1.2, p_std=1.2, sample_steps=18)
  c.dmd = dict(teacher='oracle', teacher_steps=5000, denoisers='network',
               fake_steps_per_gen=5, fake_lr=0.0, num_sigmas=1000,
               min_frac=0.02, max_frac=0.98, noised=True, fixed_sigma=0.0,
               normalize=True, regression_weight=0.0, regression_pairs=4096,
               regression_batch=256)
  c.train = dict(steps=2000, batch_size=2048, gen_batch_size=2048,
                 steps_per_call=1, ema_decay=0.0, log_every=100,
                 eval_every=1000, checkpoint_every=1000, keep_checkpoints=3,
                 progress=True)
  # eval.classifier (image data): '' trains one into workdir/classifier,
  # 'none' skips the classifier metrics, or the directory of one.
  c.eval = dict(num_samples=5000, plot=True, classifier='')
  c.mesh = dict(num_devices=-1)
  return c


def runlocal(c: ml_collections.ConfigDict) -> None:
  """Shrinks a config in place to a seconds-long smoke run (tests)."""
  c.model.generator.update(width=32, depth=2, noise_dim=8)
  c.model.denoiser.update(width=32, depth=2)
  c.train.update(steps=6, batch_size=64, gen_batch_size=64, log_every=1,
                 eval_every=3, checkpoint_every=3, progress=False)
  c.dmd.update(teacher_steps=6, fake_steps_per_gen=2, regression_pairs=64,
               regression_batch=16)
  c.diffusion.sample_steps = 4
  c.eval.num_samples = 256
  c.classifier.update(channels=(8, 16), steps=20, batch_size=32)


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


def validate(c: ml_collections.ConfigDict, device_count: int) -> None:
  """Raises ValueError naming the key for anything a run cannot start with."""
  reference = base_config()
  unknown = list(_unknown_keys(c, reference))
  if unknown:
    raise ValueError(f'Unknown config keys: {unknown}.')
  errors = list(_type_errors(c, reference))
  if errors:
    raise ValueError('Config type errors: ' + '; '.join(errors) + '.')

  def choose(name, value, choices):
    if value not in choices:
      raise ValueError(f'`{name}` must be one of {tuple(choices)}, got '
                       f'{value!r}.')

  choose('method', c.method, METHODS)
  choose('data.name', c.data.name, ((data.FILE_DATASET, data.GMM_DATASET)
                                    + tuple(distributions.TOY_SAMPLERS)
                                    + tuple(distributions.TOY_MIXTURES)
                                    + image_data.FORMATS))
  if c.data.name in image_data.FORMATS[1:] and not os.path.exists(
      c.data.path):
    raise ValueError(f'`data.path` {c.data.path!r} does not exist; '
                     f'data.name={c.data.name!r} reads images from a local '
                     'path (nothing is downloaded).')
  choose('field.kernel', c.field.kernel, tuple(kernels.KERNELS))
  choose('field.normalization', c.field.normalization, fields.NORMALIZATIONS)
  choose('field.negatives_scope', c.field.negatives_scope,
         drifting.NEGATIVES_SCOPES)
  choose('dmd.denoisers', c.dmd.denoisers, dmd.DENOISER_KINDS)
  choose('optim.schedule', c.optim.schedule, common.SCHEDULES)
  choose('model.generator.init', c.model.generator.init, mlp.INITS)
  if c.data.name == data.FILE_DATASET and not c.data.path:
    raise ValueError("`data.path` is required with data.name='file' (a .npy "
                     'or .npz holding an [N, D] array).')
  if c.data.name == data.FILE_DATASET and not os.path.isfile(c.data.path):
    raise ValueError(f'`data.path` {c.data.path!r} does not exist.')
  for name in ('steps', 'batch_size', 'gen_batch_size', 'steps_per_call',
               'log_every', 'eval_every', 'checkpoint_every'):
    if c.train[name] < 1:
      raise ValueError(f'`train.{name}` must be >= 1, got {c.train[name]}.')
  for name in ('batch_size', 'gen_batch_size'):
    if c.train[name] % device_count:
      raise ValueError(
          f'`train.{name}` = {c.train[name]} is not divisible by the device '
          f'count ({device_count}); use a multiple of {device_count}.')
  k = c.train.steps_per_call
  for name in ('steps', 'log_every', 'eval_every', 'checkpoint_every'):
    if c.train[name] % k:
      raise ValueError(f'`train.{name}` = {c.train[name]} must be a multiple '
                       f'of `train.steps_per_call` = {k}.')
  if not 0.0 <= c.train.ema_decay < 1.0:
    raise ValueError(f'`train.ema_decay` must be in [0, 1), got '
                     f'{c.train.ema_decay}.')
  if c.eval.num_samples < 2:
    raise ValueError(f'`eval.num_samples` must be >= 2, got '
                     f'{c.eval.num_samples}.')
  if c.method == 'dmd':
    _validate_dmd(c)
  _validate_images(c)


def _validate_images(c):
  cond, enc = c.conditional, c.features.encoder
  if not 1.0 <= cond.alpha_min <= cond.alpha_max:
    raise ValueError(f'Need 1 <= conditional.alpha_min <= '
                     f'conditional.alpha_max, got {cond.alpha_min}, '
                     f'{cond.alpha_max}.')
  if cond.eval_alpha < 1.0:
    raise ValueError(f'`conditional.eval_alpha` must be >= 1, got '
                     f'{cond.eval_alpha}.')
  if enc != 'none' and c.method != 'drifting':
    raise ValueError(f"`features.encoder` applies to method='drifting' "
                     f'only, got method={c.method!r}.')
  if enc not in ('none', 'train') and not os.path.isdir(enc):
    raise ValueError(f"`features.encoder` must be 'none', 'train' or the "
                     f'directory of a trained classifier; {enc!r} is '
                     'neither.')
  clf = c.eval.classifier
  if clf not in ('', 'none') and not os.path.isdir(clf):
    raise ValueError(f"`eval.classifier` must be '', 'none' or the "
                     f'directory of a trained classifier; {clf!r} is '
                     'neither.')
  if (enc != 'none' or cond.enabled) and c.field.negatives_scope != 'global':
    raise ValueError("Feature-space and class-conditional drifting need "
                     "`field.negatives_scope='global'`.")
  if cond.enabled and c.data.name not in image_data.FORMATS:
    raise ValueError(f'`conditional.enabled` needs labelled image data, got '
                     f'data.name={c.data.name!r}.')
  for name in ('steps', 'batch_size'):
    if c.classifier[name] < 1:
      raise ValueError(f'`classifier.{name}` must be >= 1, got '
                       f'{c.classifier[name]}.')


def _validate_dmd(c):
  d = c.dmd
  mixtures = (data.GMM_DATASET,) + tuple(distributions.TOY_MIXTURES)
  if d.denoisers == 'network':
    if d.teacher == 'oracle' and c.data.name not in mixtures:
      raise ValueError(
          f"`dmd.teacher='oracle'` needs Gaussian-mixture data (one of "
          f'{mixtures}), got data.name={c.data.name!r}; use '
          "dmd.teacher='train' or a path to a diffusion workdir.")
    if d.teacher not in TEACHER_CHOICES and not os.path.isdir(d.teacher):
      raise ValueError(f'`dmd.teacher` must be one of {TEACHER_CHOICES} or '
                       f'the workdir of a diffusion run; {d.teacher!r} is '
                       'neither.')
  if d.fake_steps_per_gen < 1:
    raise ValueError(f'`dmd.fake_steps_per_gen` must be >= 1, got '
                     f'{d.fake_steps_per_gen}.')
  if not 0.0 <= d.min_frac <= d.max_frac <= 1.0:
    raise ValueError(f'Need 0 <= dmd.min_frac <= dmd.max_frac <= 1, got '
                     f'{d.min_frac}, {d.max_frac}.')
  if d.denoisers == 'kde' and d.regression_weight > 0:
    raise ValueError('`dmd.regression_weight` > 0 needs a network teacher, '
                     "not dmd.denoisers='kde'.")


def improved_toy_defaults(c: ml_collections.ConfigDict) -> None:
  """Default toy settings beyond the paper's demo recipe (README, "Quality
  bar", has what experiments/toy_quality.py measured with them).

  - 5,000 steps with a cosine learning-rate decay and an EMA of the
    parameters (warmed up, see `methods.common.apply_gradients`): the demo
    recipe is still improving at 2,000 steps and its final iterate jitters
    at a constant learning rate.
  - For the EDM teacher and DMD, sigma_max = 5 instead of 80: the data have
    unit scale, and with 80 half of the Karras grid lies above sigma = 2.5
    where the smoothed densities carry almost no signal (a grid rescaled to
    the data scale, REFERENCES T10).
  """
  c.train.update(steps=5000, ema_decay=0.999)
  c.optim.schedule = 'cosine'
  c.diffusion.sigma_max = 5.0


def authors_field_recipe(c: ml_collections.ConfigDict) -> None:
  """The drifting paper's full field recipe (Deng App. A.6) instead of the
  demo's single temperature: distances divided by their batch mean,
  temperatures (0.02, 0.05, 0.2), each temperature's drift divided by its
  RMS. The default of configs/toy2d.py (README, "Quality bar": 1.48x vs
  2.80x the energy-distance floor on the checkerboard over 3 seeds) and of
  configs/digits.py (it makes the temperatures independent of the
  dimension)."""
  c.field.update(temperatures=(0.02, 0.05, 0.2), normalize_distances=True,
                 normalize_drift=True)
