"""Image loaders on files written here in each real format."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from drift_jax import methods
from drift_jax.data import images as image_data


def _write_idx(path, array, compress=False):
  header = struct.pack('>HBB', 0, 0x08, array.ndim)
  header += struct.pack(f'>{array.ndim}I', *array.shape)
  opener = gzip.open if compress else open
  with opener(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


def test_digits_ship_with_sklearn_and_upsample_exactly():
  images, labels = image_data.load_digits()
  assert images.shape == (1797, 8, 8, 1) and labels.shape == (1797,)
  assert images.min() == -1.0 and images.max() == 1.0
  assert set(labels.tolist()) == set(range(10))
  big, _ = image_data.load_digits(16)
  assert big.shape == (1797, 16, 16, 1)
  np.testing.assert_array_equal(big[:, ::2, ::2], images)
  np.testing.assert_array_equal(big[:, 1::2, 1::2], images)


@pytest.mark.parametrize('compress', [False, True])
def test_mnist_idx_files(tmp_path, compress):
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
  labels = np.array([3, 1, 4, 1, 5], np.uint8)
  suffix = '.gz' if compress else ''
  _write_idx(tmp_path / f'train-images-idx3-ubyte{suffix}', pixels, compress)
  _write_idx(tmp_path / f'train-labels-idx1-ubyte{suffix}', labels, compress)
  images, got = image_data.load_mnist(str(tmp_path))
  assert images.shape == (5, 28, 28, 1)
  np.testing.assert_allclose(images[..., 0], pixels / 255 * 2 - 1, atol=1e-6)
  np.testing.assert_array_equal(got, labels)
  with pytest.raises(FileNotFoundError, match='t10k-images-idx3-ubyte'):
    image_data.load_mnist(str(tmp_path), split='test')


def test_cifar10_pickle_batches(tmp_path):
  rng = np.random.default_rng(1)
  expected = []
  for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
    data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, 2)]
    with open(tmp_path / name, 'wb') as f:
      pickle.dump({b'data': data, b'labels': labels,
                   b'batch_label': name.encode()}, f)
    expected.append((data, labels))
  images, labels = image_data.load_cifar10(str(tmp_path))
  assert images.shape == (10, 32, 32, 3)
  # Channel-major rows: the first 1024 values are the red plane.
  first = expected[0][0][0]
  np.testing.assert_allclose(images[0, :, :, 0],
                             first[:1024].reshape(32, 32) / 255 * 2 - 1,
                             atol=1e-6)
  np.testing.assert_allclose(images[0, 0, 1, 2], first[2048 + 1] / 255 * 2 - 1,
                             atol=1e-6)
  assert labels.tolist() == sum((lab for _, lab in expected[:5]), [])
  test_images, _ = image_data.load_cifar10(str(tmp_path), split='test')
  assert test_images.shape == (2, 32, 32, 3)


def test_png_folder_flat_and_per_class(tmp_path):
  from PIL import Image
  rng = np.random.default_rng(2)
  for cls in ['cat', 'dog']:
    os.makedirs(tmp_path / 'classes' / cls)
    for i in range(3):
      Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(
          tmp_path / 'classes' / cls / f'{i}.png')
  images, labels = image_data.load_png_folder(str(tmp_path / 'classes'))
  assert images.shape == (6, 6, 6, 3)
  assert labels.tolist() == [0, 0, 0, 1, 1, 1]
  os.makedirs(tmp_path / 'flat')
  gray = rng.integers(0, 256, (4, 4), dtype=np.uint8)
  Image.fromarray(gray).save(tmp_path / 'flat' / 'a.png')
  images, labels = image_data.load_png_folder(str(tmp_path / 'flat'))
  np.testing.assert_allclose(images[0, ..., 0], gray / 255 * 2 - 1, atol=1e-6)
  assert labels.tolist() == [-1]


def test_npz_uint8_float_and_errors(tmp_path):
  pixels = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
  np.savez(tmp_path / 'u8.npz', images=pixels, labels=np.array([7, 8]))
  images, labels = image_data.load_npz(str(tmp_path / 'u8.npz'))
  assert images.shape == (2, 4, 4, 1) and labels.tolist() == [7, 8]
  np.savez(tmp_path / 'bad.npz', images=np.full((2, 4, 4), 3.0))
  with pytest.raises(ValueError, match=r'\[-1, 1\]'):
    image_data.load_npz(str(tmp_path / 'bad.npz'))
  with pytest.raises(KeyError, match='pixels'):
    image_data.load_npz(str(tmp_path / 'u8.npz'), images_key='pixels')


def test_missing_paths_say_the_expected_layout(tmp_path):
  missing = str(tmp_path / 'nope')
  with pytest.raises(FileNotFoundError, match='train-images-idx3-ubyte'):
    image_data.load('mnist', missing)
  with pytest.raises(FileNotFoundError, match='data_batch_1'):
    image_data.load('cifar10', missing)
  with pytest.raises(FileNotFoundError, match='sub-folder per class'):
    image_data.load('png_folder', missing)
  with pytest.raises(ValueError, match='needs a local `path`'):
    image_data.load('mnist')
  with pytest.raises(ValueError, match='Unknown image dataset'):
    image_data.load('imagenet', missing)


def test_digits_train_through_the_runner_as_flat_vectors(tmp_path):
  """Raw-pixel drifting on the digits: the runner's finite-data path with
  image-grid plots; 20 % of the rows are held out."""
  from configs import toy2d
  from drift_jax.data import datasets as data_lib
  from drift_jax.train import runner
  c = toy2d.get_config('runlocal')
  c.data.name = 'digits'
  c.mesh.num_devices = 1
  c.eval.plot = True
  dataset = data_lib.make_dataset(c.data, seed=0, eval_size=256)
  assert dataset.image_shape == (8, 8, 1) and dataset.dim == 64
  assert len(dataset.train) == 1797 - round(0.2 * 1797)
  assert len(dataset.labels) == len(dataset.train)
  assert len(dataset.held_out) == 256  # min(eval size, held-out rows)
  summary = runner.train_and_evaluate(c, str(tmp_path))
  assert np.isfinite(summary['eval/energy_distance'])
  assert os.path.getsize(tmp_path / 'samples.png') > 0


def test_image_dataset_config_errors_name_the_path(tmp_path):
  from configs import toy2d
  c = toy2d.get_config('runlocal')
  c.data.update(name='mnist', path=str(tmp_path / 'missing'))
  with pytest.raises(ValueError, match='nothing is downloaded'):
    methods.validate(c, device_count=1)
