"""Fashion-MNIST: the Debian package's files, and self-written IDX files for
the error paths and the dataset's splits."""

import gzip
import os
import struct

import numpy as np
import pytest

from drift_jax.data import datasets as data_lib
from drift_jax.data import images as image_data

INSTALLED = os.path.isdir(image_data.FASHION_MNIST_DIR)
needs_package = pytest.mark.skipif(
    not INSTALLED, reason='Fashion-MNIST is not installed '
    f'({image_data.FASHION_MNIST_INSTALL} as root installs it)')


def _write_idx(path, array, *, magic=(0, 0x08), cut=0):
  data = struct.pack('>HBB', *magic, array.ndim)
  data += struct.pack(f'>{array.ndim}I', *array.shape)
  data += array.astype(np.uint8).tobytes()
  with gzip.open(path, 'wb') as f:
    f.write(data[:len(data) - cut])


def _fake_folder(folder, num_train=40, num_test=20, **corrupt):
  """A Fashion-MNIST layout of tiny random images, 10 balanced classes."""
  folder.mkdir(exist_ok=True)
  rng = np.random.default_rng(0)
  for prefix, n in (('train', num_train), ('t10k', num_test)):
    pixels = rng.integers(0, 256, (n, 28, 28))
    _write_idx(folder / f'{prefix}-images-idx3-ubyte.gz', pixels,
               **(corrupt if prefix == 'train' else {}))
    _write_idx(folder / f'{prefix}-labels-idx1-ubyte.gz',
               np.arange(n) % 10)
  return str(folder)


@needs_package
def test_the_package_holds_the_official_balanced_splits():
  images, labels = image_data.load_fashion_mnist(split='train')
  assert images.shape == (60000, 28, 28, 1) and images.dtype == np.float32
  np.testing.assert_array_equal(np.bincount(labels), [6000] * 10)
  assert images.min() == -1.0 and images.max() == 1.0
  test, test_labels = image_data.load_fashion_mnist(split='test')
  assert test.shape == (10000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(test_labels), [1000] * 10)
  # Not one training image repeated in the test split (spot check).
  assert not any(np.array_equal(test[0], x) for x in images[:2000])


@needs_package
def test_padding_to_32_adds_background_only():
  native, _ = image_data.load_fashion_mnist(split='test')
  padded, _ = image_data.load_fashion_mnist(split='test', size=32)
  assert padded.shape == (10000, 32, 32, 1)
  np.testing.assert_array_equal(padded[:, 2:30, 2:30], native)
  border = np.concatenate([padded[:, :2].ravel(), padded[:, 30:].ravel(),
                           padded[:, :, :2].ravel(), padded[:, :, 30:].ravel()])
  assert np.all(border == -1.0)


def test_missing_files_name_the_package_and_its_install_command(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'apt-get install -y '
                     r'dataset-fashion-mnist.*DRIFT_JAX_FASHION_MNIST'):
    image_data.load_fashion_mnist(str(tmp_path / 'nowhere'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(FileNotFoundError, match='train-images-idx3-ubyte'):
    image_data.load_fashion_mnist(str(tmp_path / 'empty'))


def test_truncated_and_wrong_magic_files_are_refused(tmp_path):
  with pytest.raises(ValueError, match='header says'):
    image_data.load_fashion_mnist(_fake_folder(tmp_path / 'short', cut=100))
  with pytest.raises(ValueError, match='truncated inside its header'):
    image_data.load_fashion_mnist(
        _fake_folder(tmp_path / 'header', cut=40 * 784 + 6))
  with pytest.raises(ValueError, match='not an unsigned-byte IDX file'):
    image_data.load_fashion_mnist(
        _fake_folder(tmp_path / 'magic', magic=(0, 0x0D)))
  # A gzip stream cut short (not a short but valid stream).
  folder = _fake_folder(tmp_path / 'gzip')
  name = os.path.join(folder, 'train-images-idx3-ubyte.gz')
  with open(name, 'rb') as f:
    whole = f.read()
  with open(name, 'wb') as f:
    f.write(whole[:len(whole) // 2])
  with pytest.raises(ValueError, match='truncated'):
    image_data.load_fashion_mnist(folder)


def test_sizes_other_than_28_and_32_are_refused(tmp_path):
  with pytest.raises(ValueError, match=r'`data.image_size` must be one of'):
    image_data.load_fashion_mnist(_fake_folder(tmp_path / 'f'), size=8)


def test_the_environment_variable_points_at_another_folder(tmp_path,
                                                           monkeypatch):
  monkeypatch.setenv(image_data.FASHION_MNIST_ENV,
                     _fake_folder(tmp_path / 'f', num_train=30))
  images, labels = image_data.load_fashion_mnist()
  assert images.shape == (30, 28, 28, 1)
  np.testing.assert_array_equal(labels, np.arange(30) % 10)


def _data_config(path, validation_fraction=0.0, image_size=28):
  import ml_collections
  return ml_collections.ConfigDict(dict(
      data_lib.config_section(), name='fashion_mnist', path=path,
      image_size=image_size, validation_fraction=validation_fraction))


def test_held_out_rows_come_from_the_test_split_and_validation_from_train(
    tmp_path):
  folder = _fake_folder(tmp_path / 'f', num_train=40, num_test=20)
  train, _ = image_data.load_fashion_mnist(folder)
  test, _ = image_data.load_fashion_mnist(folder, split='test')
  train, test = train.reshape(40, -1), test.reshape(20, -1)

  def rows_of(points, pool):
    return [int(np.flatnonzero((pool == p).all(1))[0]) for p in points]

  config = _data_config(folder, validation_fraction=0.25)
  ds = data_lib.make_dataset(config, eval_size=16, seed=0)
  assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
  assert len(ds.train) == 30 and len(ds.held_out) == 16
  held = rows_of(ds.held_out, test)  # every held-out row is a test row
  assert len(set(held)) == 16
  val = data_lib.make_dataset(config, eval_size=16, seed=0,
                              split='validation')
  val_rows = set(rows_of(val.held_out, train))
  train_rows = set(rows_of(ds.train, train))
  assert len(val_rows) == 10 and not val_rows & train_rows
  assert val_rows | train_rows == set(range(40))
  # The labels travel with their rows.
  np.testing.assert_array_equal(ds.held_out_labels, np.array(held) % 10)
  # The same evaluation seed gives the same sets; another gives others.
  again = data_lib.make_dataset(config, eval_size=16, seed=0)
  np.testing.assert_array_equal(again.held_out, ds.held_out)
  other = data_lib.make_dataset(config, eval_size=16, seed=1)
  assert not np.array_equal(other.held_out, ds.held_out)
  with pytest.raises(ValueError, match='validation_fraction'):
    data_lib.make_dataset(_data_config(folder), eval_size=16, seed=0,
                          split='validation')


def test_padded_dataset_is_32_by_32(tmp_path):
  folder = _fake_folder(tmp_path / 'f')
  ds = data_lib.make_dataset(_data_config(folder, image_size=32),
                             eval_size=8, seed=0)
  assert ds.image_shape == (32, 32, 1) and ds.dim == 1024


def test_grids_have_gaps_and_one_row_per_class():
  from drift_jax.train import reporting
  images = np.arange(6, dtype=np.float32)[:, None, None, None] * np.ones(
      (6, 3, 2, 1), np.float32) / 10
  grid = reporting.tile_images(images, 2, 3, gap=1, background=1.0)
  assert grid.shape == (2 * 3 + 1, 3 * 2 + 2, 1)
  assert np.all(grid[3] == 1.0) and np.all(grid[:, 2] == 1.0)  # the gaps
  # Row 1, column 1 holds image 4.
  np.testing.assert_array_equal(grid[4:, 3:5, 0], images[4, ..., 0])
  # Class-major samples, 4 per class: each row holds one class.
  samples = np.repeat(np.arange(3), 4)[:, None].astype(np.float32)
  rows = reporting.class_rows(samples, 3, cols=2)
  np.testing.assert_array_equal(rows[:, 0], [0, 0, 1, 1, 2, 2])
  with pytest.raises(ValueError, match='do not fit'):
    reporting.tile_images(images, 1, 3)


def test_the_encoder_and_the_evaluation_network_must_differ(tmp_path):
  from drift_jax import methods
  from drift_jax.config import config_lib
  c = config_lib.load_config_file('configs/fashion_mnist.py:encoder=mae')
  shared = tmp_path / 'net'
  shared.mkdir()
  c.features.encoder = str(shared)
  c.eval.classifier = str(tmp_path / '.' / 'net')  # the same folder
  with pytest.raises(ValueError, match='must not be scored in the network'):
    methods.validate(c, 1)
  c.eval.classifier = 'train'
  methods.validate(c, 1)
