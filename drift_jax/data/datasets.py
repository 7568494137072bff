"""Training and evaluation data for the runner.

Two kinds of source:
- synthetic (2-D toys, Gaussian mixtures): a pure JAX sampler, drawn inside
  one jitted call at global shape, so the batch of step t is the same on any
  number of devices and each process computes only its own shards;
- finite (a user's point cloud, or images flattened to [N, H W C] vectors:
  `image_data`): a NumPy array split into train and held-out rows; the
  global batch's row indices are a function of (seed, step) only, and each
  process gathers just its slice of them (`parallel.host_local_to_global`).

Both give batches [steps_per_call, B, D] for step t0 .. t0 + k - 1, so a
run that resumes at step t sees exactly the batches an uninterrupted run
would.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from drift_jax.data import bank
from drift_jax.data import images as image_data
from drift_jax.parallel import keyed
from drift_jax.parallel import sharding as parallel
from drift_jax.theory import distributions

FILE_DATASET = 'file'
GMM_DATASET = 'gmm'


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A data source plus the held-out sets evaluation compares against."""
  name: str
  dim: int
  held_out: np.ndarray  # [E, D] what generated samples are compared with
  floor_reference: np.ndarray  # [E, D] independent data, for the floor
  sampler: Callable | None = None  # (key, n) -> [n, D]; synthetic only
  train: np.ndarray | None = None  # [N, D]; finite only
  mixture: distributions.GaussianMixture | None = None  # exact density
  image_shape: tuple[int, ...] | None = None  # (H, W, C) of flat images
  labels: np.ndarray | None = None  # [N] class of each train row (images)
  held_out_labels: np.ndarray | None = None  # [E] class of each held-out row
  # A latent-space run's data (`encoders.latent.latent_dataset`): the
  # pixel dataset its rows encode, and latents [N, d] -> images [N, D].
  pixels: Any = None
  decode: Callable | None = None

  @property
  def num_classes(self) -> int:
    """Number of classes of labelled data (0 when unlabelled)."""
    if self.labels is None or np.all(self.labels < 0):
      return 0
    return int(np.max(self.labels)) + 1


def gaussian_mixture(dim: int, num_components: int, radius: float,
                     std: float, seed: int = 0):
  """The `gmm` dataset: equal-weight isotropic components.

  In 2-D the means sit evenly on a circle of `radius` (the classic ring of
  8 Gaussians); in higher dimension they are `num_components` directions
  drawn uniformly on the sphere of that radius with `seed`.
  """
  if dim < 1 or num_components < 1 or radius < 0 or std <= 0:
    raise ValueError(
        f'Invalid mixture: data.dim={dim}, data.num_components='
        f'{num_components}, data.radius={radius}, data.std={std}; need '
        'dim >= 1, num_components >= 1, radius >= 0, std > 0.')
  if dim == 2:
    angles = 2 * np.pi * np.arange(num_components) / num_components
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
  else:
    directions = np.random.default_rng(seed).normal(
        size=(num_components, dim))
    means = radius * directions / np.linalg.norm(directions, axis=-1,
                                                 keepdims=True)
  return distributions.GaussianMixture.isotropic(
      jnp.asarray(means, jnp.float32), std)


def evaluation_seed(seed: int, eval_seed: int = -1) -> int:
  """The seed of a run's evaluation sets (held-out, floor reference and
  floor draws): `eval.seed` when it is >= 0 (the same sets for every run of
  a task), else the run's own seed (per-seed sets, the old protocol)."""
  return eval_seed if eval_seed >= 0 else seed


def make_dataset(data_config, *, eval_size: int, seed: int,
                 eval_seed: int = -1, split: str = 'test') -> Dataset:
  """Builds the `Dataset` that `data_config.name` names.

  Args:
    data_config: the config's `data` block (`name`, and for `gmm`: `dim`,
      `num_components`, `radius`, `std`; for `file`: `path`, `key`,
      `held_out_fraction`).
    eval_size: number of held-out samples (and of floor samples).
    seed: the run's seed; held-out sets use their own keys, never the
      training stream's.
    eval_seed: when >= 0, the held-out and floor sets (and a finite
      dataset's split) come from it instead of `seed` (`eval.seed`): the
      same sets for every run of a task.
    split: 'test' (`held_out` is the test set) or 'validation' (`held_out`
      is the validation set: synthetic data draw it and its floor
      reference with their own keys; finite data use the
      `data.validation_fraction` rows after the test rows).
  """
  seed = evaluation_seed(seed, eval_seed)
  name = data_config.name
  eval_key = jax.random.fold_in(jax.random.key(seed), 0x5EED)
  if split == 'validation':  # independent of every test-set key
    eval_key = jax.random.fold_in(eval_key, 0x7A11D)
  if name not in SOURCES:
    raise ValueError(f'Unknown `data.name` {name!r}; known: '
                     f'{tuple(SOURCES)}.')
  return SOURCES[name].make(data_config, eval_key=eval_key,
                            eval_size=eval_size, seed=seed, split=split)


def _gmm_dataset(data_config, *, eval_key, eval_size, seed, split):
  del seed, split
  mixture = gaussian_mixture(data_config.dim, data_config.num_components,
                             data_config.radius, data_config.std,
                             data_config.mixture_seed)
  return _synthetic_dataset(data_config.name, mixture.sample, mixture,
                            eval_key, eval_size)


def _toy_dataset(data_config, *, eval_key, eval_size, seed, split):
  del seed, split
  name = data_config.name
  mixture = (distributions.TOY_MIXTURES[name]()
             if name in distributions.TOY_MIXTURES else None)
  return _synthetic_dataset(name, distributions.toy_sampler(name), mixture,
                            eval_key, eval_size)


def _synthetic_dataset(name, sampler, mixture, eval_key, eval_size):
  """A sampler's held-out and floor-reference draws (keys 0 and 1)."""
  held_out, floor_reference = (
      np.asarray(sampler(jax.random.fold_in(eval_key, i), eval_size))
      for i in (0, 1))
  return Dataset(name=name, dim=held_out.shape[1], held_out=held_out,
                 floor_reference=floor_reference, sampler=sampler,
                 mixture=mixture)


def _split(points, fraction, seed, validation_fraction=0.0):
  """A seeded permutation of the rows, then (test, validation, train)
  indices: the test rows first, the validation rows next (none when
  `validation_fraction` is 0), so adding a validation split leaves the
  test rows as they were."""
  if not 0 < fraction < 0.5:
    raise ValueError(f'`data.held_out_fraction` must be in (0, 0.5), got '
                     f'{fraction}.')
  order = np.random.default_rng(seed).permutation(len(points))
  num_test = max(2, int(round(fraction * len(points))))
  num_val = (max(2, int(round(validation_fraction * len(points))))
             if validation_fraction > 0 else 0)
  if num_test + num_val >= len(points) - 1:
    raise ValueError(f'`data.held_out_fraction` = {fraction} and '
                     f'`data.validation_fraction` = {validation_fraction} '
                     f'leave no training rows of {len(points)}.')
  return (order[:num_test], order[num_test:num_test + num_val],
          order[num_test + num_val:])


def _finite_dataset(name, points, data_config, eval_size, seed, split, *,
                    labels=None, image_shape=None):
  fraction = data_config.get('validation_fraction', 0.0)
  test_idx, val_idx, train_idx = _split(
      points, data_config.held_out_fraction, seed, fraction)
  if split == 'validation' and not len(val_idx):
    raise ValueError("`eval.split='validation'` on finite data needs "
                     '`data.validation_fraction` > 0 (rows no run trains '
                     'on).')
  held_idx = val_idx if split == 'validation' else test_idx
  held_out, train = points[held_idx], points[train_idx]
  size = min(eval_size, len(held_out))
  # The floor compares held-out rows with as many training rows: two
  # independent draws from the data distribution.
  return Dataset(name=name, dim=points.shape[1], held_out=held_out[:size],
                 floor_reference=train[:size], train=train,
                 labels=None if labels is None else labels[train_idx],
                 held_out_labels=(None if labels is None
                                  else labels[held_idx][:size]),
                 image_shape=image_shape)


# Fewest rows of a file dataset: the held-out split (>= 2 rows at a fraction
# < 0.5), the floor's reference rows and the training batches all come out
# of it, and the metrics need at least 2 of each.
MIN_FILE_POINTS = 10
# Keys of the data row's draws (the leaderboard's and a run summary's;
# the floors' extra draws use evaluators.distances.FLOOR_SALT).
DATA_ROW_SALT = 0xDA7A


def _file_dataset(data_config, *, eval_key, eval_size, seed, split):
  del eval_key
  path = data_config.path
  points = distributions.load_point_cloud(path, data_config.key or None)
  if len(points) < MIN_FILE_POINTS:
    raise ValueError(f'Point cloud in {path!r} has {len(points)} points; '
                     f'need >= {MIN_FILE_POINTS} (a held-out split, the '
                     'floor and training batches come from it).')
  if not np.any(np.ptp(points, axis=0) > 0):
    raise ValueError(f'Point cloud in {path!r} is constant (every row '
                     'equals the first): the distances the metrics divide '
                     'by are zero.')
  if len(points) > data_config.max_points:
    logging.warning('%s has %d points; training on a random subset of '
                    '`data.max_points` = %d (raise it to use more).', path,
                    len(points), data_config.max_points)
    keep = np.random.default_rng(seed).choice(
        len(points), data_config.max_points, replace=False)
    points = points[np.sort(keep)]
  return _finite_dataset(FILE_DATASET, points, data_config, eval_size, seed,
                         split)


def _image_dataset(data_config, *, eval_key, eval_size, seed, split):
  """Images as flat vectors in [-1, 1] (`image_data.load`)."""
  del eval_key
  name = data_config.name
  images, labels = image_data.load(name, data_config.path,
                                   data_config.image_size)
  flat = images.reshape(len(images), -1)
  if image_data.has_test_split(name):
    test, test_labels = image_data.load(name, data_config.path,
                                        data_config.image_size, 'test')
    return _official_split_dataset(
        name, flat, labels, test.reshape(len(test), -1), test_labels,
        data_config, eval_size, seed, split,
        image_shape=tuple(images.shape[1:]))
  return _finite_dataset(name, flat, data_config, eval_size,
                         seed, split, labels=labels,
                         image_shape=tuple(images.shape[1:]))


def _official_split_dataset(name, train_points, train_labels, test_points,
                            test_labels, data_config, eval_size, seed, split,
                            *, image_shape):
  """A dataset with its own test split: the held-out set is `eval_size`
  test rows (a seeded choice), the validation set (`eval.split=
  'validation'`) the first `data.validation_fraction` of the training rows
  after a seeded permutation, and the run trains on the rest. Both choices
  come from the evaluation seed, so every run of a task sees the same
  sets."""
  fraction = data_config.get('validation_fraction', 0.0)
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(train_points))
  num_val = int(round(fraction * len(order))) if fraction > 0 else 0
  val_idx, train_idx = order[:num_val], order[num_val:]
  if split == 'validation':
    if num_val < 2:
      raise ValueError("`eval.split='validation'` needs "
                       '`data.validation_fraction` > 0 (training rows no '
                       'run trains on).')
    held_out, held_labels = train_points[val_idx], train_labels[val_idx]
  else:
    test_idx = rng.permutation(len(test_points))
    held_out, held_labels = test_points[test_idx], test_labels[test_idx]
  size = min(eval_size, len(held_out))
  train = train_points[train_idx]
  return Dataset(name=name, dim=train.shape[1], held_out=held_out[:size],
                 floor_reference=train[:size], train=train,
                 labels=train_labels[train_idx],
                 held_out_labels=held_labels[:size], image_shape=image_shape)


class Source(NamedTuple):
  """A data source (a `SOURCES` entry).

  Attributes:
    make: (data_config, *, eval_key, eval_size, seed, split) -> Dataset.
    options: {key: default} of the `data` keys it reads beyond the shared
      ones (`SHARED_OPTIONS`); the `data` section is their union.
    needs_path: whether it reads a local `data.path`.
  """
  make: Callable[..., Dataset]
  options: Mapping[str, Any] = types.MappingProxyType({})
  needs_path: bool = False


# The keys every source understands: which one, where its files are, and
# how finite data are split (held-out test rows, then validation rows).
# draw: how a finite dataset's training batches pick their rows (`DRAWS`).
# bank_size, bank_push: the streaming bank's ring per class and the
# records each process pushes a step (`data.stream`, draw='stream').
SHARED_OPTIONS = dict(name='checkerboard', path='', held_out_fraction=0.2,
                      validation_fraction=0.0, draw='replacement',
                      bank_size=128, bank_push=64)
# 'replacement': each batch's rows drawn independently, with replacement,
# from (seed, step) (every stored result was trained so); 'epochs': the
# in-memory bank (`data.bank`), each class's (or, unconditional, all) rows
# read in seeded permutations, without replacement. Both are functions of
# (seed, step) alone; synthetic data are fresh draws either way. 'stream':
# the streaming per-class bank (`data.stream`) of class-conditional runs,
# per process, its state saved with every checkpoint.
DRAWS = ('replacement', 'epochs', 'stream')
_IMAGE_OPTIONS = {'image_size': 8}
# One line per source (every 2-D toy and image format is one). A file
# larger than `data.max_points` is subsampled (with a logged note) instead
# of held whole on every device.
SOURCES: dict[str, Source] = {
    FILE_DATASET: Source(_file_dataset, dict(key='', max_points=1_000_000),
                         needs_path=True),
    GMM_DATASET: Source(_gmm_dataset, dict(dim=2, num_components=8,
                                           radius=1.0, std=0.08,
                                           mixture_seed=0)),
    **{name: Source(_toy_dataset) for name in (
        *distributions.TOY_SAMPLERS, *distributions.TOY_MIXTURES)},
    **{name: Source(_image_dataset, _IMAGE_OPTIONS,
                    needs_path=image_data.needs_path(name))
       for name in image_data.FORMATS},
}


def config_section() -> dict:
  """The `data` config section: the shared keys and every source's own
  (a key two sources share has one default)."""
  section = dict(SHARED_OPTIONS)
  for name, source in SOURCES.items():
    for key, default in source.options.items():
      if section.setdefault(key, default) != default:
        raise ValueError(f'Data source {name!r} declares `data.{key}` with '
                         'another default than a source before it.')
  return section


def _check_draw(draw: str) -> None:
  if draw not in DRAWS:
    raise ValueError(f'`data.draw` must be one of {DRAWS}, got {draw!r}.')


def for_run(config) -> Dataset:
  """The dataset of a run's config (`data`, `seed`, `eval.num_samples`,
  `eval.seed`; a config.json written before `eval.seed` existed follows
  its seed)."""
  draw = config.data.get('draw', 'replacement')
  _check_draw(draw)
  if draw == 'stream' and not config.conditional.enabled:
    raise ValueError("`data.draw='stream'` is a per-class bank: it needs "
                     'a class-conditional run (conditional.enabled).')
  return make_dataset(config.data, seed=config.seed,
                      eval_size=config.eval.num_samples,
                      eval_seed=config.eval.get('seed', -1),
                      split=config.eval.get('split', 'test'))


def independent_draws(dataset: Dataset, count: int, seed: int,
                      salt: int) -> list[np.ndarray]:
  """`count` sets of `len(dataset.held_out)` data points, each drawn
  independently of the held-out set: fresh samples of a synthetic
  distribution (keys from `seed` and `salt`), or random subsets of a finite
  dataset's training rows. Floors average such draws (`eval.floor_draws`)
  and the data row of a comparison scores them like samples."""
  n = len(dataset.held_out)
  base = jax.random.fold_in(jax.random.key(seed), salt)
  draws = []
  for i in range(count):
    if dataset.sampler is not None:
      draws.append(np.asarray(dataset.sampler(jax.random.fold_in(base, i),
                                              n)))
    else:
      if n > len(dataset.train):
        raise ValueError(f'{n} held-out rows but only {len(dataset.train)} '
                         'training rows to draw a reference set from.')
      rows = np.random.default_rng([seed, salt, i]).choice(
          len(dataset.train), n, replace=False)
      draws.append(dataset.train[np.sort(rows)])
  return draws


def class_major_labels(n: int, num_classes: int):
  """[n] labels 0..C-1 in contiguous, near-equal runs: the class-major
  layout of class-balanced batches and of every conditional run's
  generated samples (rows c n / C .. (c + 1) n / C - 1 have class c when C
  divides n)."""
  return (jnp.arange(n) * num_classes // n).astype(jnp.int32)


def check_class_major(labels, num_classes: int) -> None:
  """Raises ValueError unless `labels` [n] are `class_major_labels`."""
  labels = np.asarray(labels)
  want = np.asarray(class_major_labels(len(labels), num_classes))
  if labels.shape != want.shape or np.any(labels != want):
    raise ValueError(f'Labels of a class-balanced batch must be class-major '
                     f'({num_classes} equal runs); got {labels}.')


def make_batch_fn(dataset: Dataset, mesh, *, batch_size: int,
                  steps_per_call: int, seed: int,
                  class_balanced: bool = False, draw: str = 'replacement'):
  """Returns batches(step) -> [steps_per_call, batch_size, D] global array.

  The rows of step t depend on (seed, t) only, never on the device or
  process count. With `class_balanced` (class-conditional runs on labelled
  data) each batch holds batch_size / num_classes rows of every class,
  class-major (rows c P .. (c + 1) P - 1 have class c), and batches are
  dicts {'x': [k, B, D], 'labels': [k, B]}. `draw` (`DRAWS`) says how a
  finite dataset's rows are picked ('stream' is built by
  `data.stream.make_batch_fn`).
  """
  _check_draw(draw)
  parallel.check_divisible('train.batch_size', batch_size, mesh)
  data_key = jax.random.fold_in(jax.random.key(seed), 0xDA7A)
  sharding = parallel.batch_sharding(mesh, leading_axes=1)
  if dataset.sampler is not None:
    sampler = dataset.sampler

    def draw(step, data_key):
      keys = jax.vmap(lambda i: jax.random.fold_in(data_key, step + i))(
          jnp.arange(steps_per_call))
      return jax.vmap(lambda k: sampler(k, batch_size))(keys)

    # out_shardings: each device (and so each process) computes only its
    # own rows of the global batch. The key is an argument (`keyed`).
    return keyed.KeyedJit(draw, data_key, out_shardings=sharding)

  train = dataset.train
  rows = parallel.process_slice(batch_size)
  if draw == 'stream':
    raise ValueError("`data.draw='stream'` batches come from "
                     '`data.stream.make_batch_fn`.')
  if class_balanced:
    return _class_balanced_batches(dataset, mesh, batch_size, steps_per_call,
                                   seed, rows, draw)

  def one(step):
    if draw == 'epochs':
      return bank.plain_indices(len(train), seed, step, batch_size)
    return np.random.default_rng([seed, step]).integers(0, len(train),
                                                        batch_size)

  def batches(step):
    indices = np.stack([one(int(step) + i) for i in range(steps_per_call)])
    local = train[indices[:, rows]]  # [k, B / processes, D]
    return parallel.host_local_to_global(local, mesh, leading_axes=1)

  return batches


def _class_balanced_batches(dataset, mesh, batch_size, steps_per_call, seed,
                            rows, draw):
  num_classes = dataset.num_classes
  if num_classes < 1 or batch_size % num_classes:
    raise ValueError(f'`train.batch_size` = {batch_size} must be a multiple '
                     f'of the number of classes ({num_classes}) for '
                     'class-conditional training.')
  per_class = batch_size // num_classes
  members = [np.flatnonzero(dataset.labels == c) for c in range(num_classes)]
  labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
  check_class_major(labels, num_classes)  # what conditional methods expect

  def one(step):
    if draw == 'epochs':
      return bank.class_balanced_indices(members, seed, int(step), per_class)
    rng = np.random.default_rng([seed, int(step), 0xC1A5])
    return np.concatenate([m[rng.integers(0, len(m), per_class)]
                           for m in members])

  def batches(step):
    indices = np.stack([one(step + i) for i in range(steps_per_call)])
    local = {'x': dataset.train[indices[:, rows]],
             'labels': np.broadcast_to(labels[rows],
                                       (steps_per_call, len(labels[rows])))}
    return {k: parallel.host_local_to_global(np.ascontiguousarray(v), mesh,
                                             leading_axes=1)
            for k, v in local.items()}

  return batches
