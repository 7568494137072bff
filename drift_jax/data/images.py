"""Image datasets: scikit-learn's digits (shipped, the default),
Fashion-MNIST (Debian's `dataset-fashion-mnist` package, installed offline)
and loaders for MNIST, CIFAR-10, a folder of PNGs and an `.npz`, from local
paths.

Every loader returns `(images, labels)`: images float32 [N, H, W, C] scaled
to [-1, 1], labels int32 [N] (-1 where the source has none). Nothing is
downloaded: a missing path raises `FileNotFoundError` with the layout the
loader expects.
"""

from __future__ import annotations

import functools
import gzip
import os
import pickle
import struct
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

MNIST_LAYOUT = ('an MNIST folder holding train-images-idx3-ubyte and '
                'train-labels-idx1-ubyte (optionally .gz), and for the test '
                'split t10k-images-idx3-ubyte / t10k-labels-idx1-ubyte')
CIFAR_LAYOUT = ('the extracted cifar-10-batches-py folder: data_batch_1 .. '
                'data_batch_5 and test_batch (python pickles with b"data" '
                '[10000, 3072] uint8 and b"labels")')
PNG_LAYOUT = ('a folder of .png files, or of one sub-folder per class '
              '(labels are the sorted sub-folder names\' indices)')


def _scale(images_uint8_or_float, max_value):
  x = np.asarray(images_uint8_or_float, np.float32) / max_value
  return x * 2.0 - 1.0


def _require(path, layout):
  if not os.path.exists(path):
    raise FileNotFoundError(f'Image data path {path!r} does not exist; '
                            f'expected {layout}.')


def load_digits(size: int = 8):
  """scikit-learn's 8x8 digits (1,797 images, 10 classes, values 0..16).

  Args:
    size: 8, or 16 (each pixel repeated 2x2: an exact upsampling).
  """
  if size not in (8, 16):
    raise ValueError(f'`size` must be 8 or 16 for digits, got {size}.')
  from sklearn.datasets import load_digits as sklearn_digits
  digits = sklearn_digits()
  images = _scale(digits.images, 16.0)[..., None]  # [N, 8, 8, 1]
  if size == 16:
    images = images.repeat(2, axis=1).repeat(2, axis=2)
  return images, digits.target.astype(np.int32)


def _read_idx(path):
  """An IDX file (LeCun's MNIST format): magic 0x0000 08 ndim, big-endian
  int32 sizes, then uint8 data."""
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'rb') as f:
    header = f.read(4)
    if len(header) < 4:
      raise ValueError(f'{path!r} is not an IDX file: {len(header)} bytes.')
    zero, dtype, ndim = struct.unpack('>HBB', header)
    if zero != 0 or dtype != 0x08:
      raise ValueError(f'{path!r} is not an unsigned-byte IDX file (magic '
                       f'{zero:#06x} {dtype:#04x}).')
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
      raise ValueError(f'{path!r} is truncated inside its header.')
    shape = struct.unpack(f'>{ndim}I', sizes)
    try:
      data = np.frombuffer(f.read(), np.uint8)
    except EOFError as e:  # a gzip stream cut short
      raise ValueError(f'{path!r} is truncated: {e}.') from None
  if data.size != int(np.prod(shape)):
    raise ValueError(f'{path!r}: header says {shape}, found {data.size} '
                     'values.')
  return data.reshape(shape)


def _find(folder, name):
  for candidate in (name, name + '.gz'):
    if os.path.isfile(os.path.join(folder, candidate)):
      return os.path.join(folder, candidate)
  raise FileNotFoundError(f'{name}(.gz) not found in {folder!r}; expected '
                          f'{MNIST_LAYOUT}.')


def load_mnist(path: str, split: str = 'train'):
  """MNIST (or Fashion-MNIST) from IDX files in `path`."""
  _require(path, MNIST_LAYOUT)
  prefix = {'train': 'train', 'test': 't10k'}.get(split)
  if prefix is None:
    raise ValueError(f'`split` must be train or test, got {split!r}.')
  images = _read_idx(_find(path, f'{prefix}-images-idx3-ubyte'))
  labels = _read_idx(_find(path, f'{prefix}-labels-idx1-ubyte'))
  if images.ndim != 3 or labels.shape != images.shape[:1]:
    raise ValueError(f'MNIST files in {path!r} disagree: images '
                     f'{images.shape}, labels {labels.shape}.')
  return _scale(images, 255.0)[..., None], labels.astype(np.int32)


# Where Debian's `dataset-fashion-mnist` package puts the four IDX files
# (`dpkg -L dataset-fashion-mnist`), and the variable that overrides it.
FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
FASHION_MNIST_ENV = 'DRIFT_JAX_FASHION_MNIST'
FASHION_MNIST_INSTALL = 'apt-get install -y dataset-fashion-mnist'
FASHION_MNIST_SIZES = (28, 32)  # native, or zero-padded (the DiT's 2x2 grid)


def fashion_mnist_dir(path: str = '') -> str:
  """The folder of the Fashion-MNIST IDX files: `path` (`data.path`) when
  given, else `$DRIFT_JAX_FASHION_MNIST`, else the Debian package's."""
  folder = path or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR
  if not os.path.isdir(folder):
    raise FileNotFoundError(
        f'Fashion-MNIST not found at {folder!r}: install Debian\'s package '
        f'(`{FASHION_MNIST_INSTALL}`), or point `data.path` or '
        f'${FASHION_MNIST_ENV} at a folder holding its four IDX files.')
  return folder


def pad_images(images: np.ndarray, size: int) -> np.ndarray:
  """Images [N, H, W, C] in [-1, 1] zero-padded (to -1, the background)
  equally on each side to `size` x `size`."""
  top = (size - images.shape[1]) // 2
  left = (size - images.shape[2]) // 2
  if top < 0 or left < 0:
    raise ValueError(f'Cannot pad images of {images.shape[1:3]} to {size}.')
  return np.pad(images, ((0, 0), (top, size - images.shape[1] - top),
                         (left, size - images.shape[2] - left), (0, 0)),
                constant_values=-1.0)


def load_fashion_mnist(path: str = '', split: str = 'train',
                       size: int = 28):
  """Fashion-MNIST (Xiao et al. 2017): 60,000 training / 10,000 test
  28x28 greyscale images of 10 balanced classes, as [N, size, size, 1] in
  [-1, 1] and labels [N].

  Args:
    path: a folder holding the IDX files; '' finds them (`fashion_mnist_dir`).
    split: 'train' or 'test' (the official split; the test set is what a
      run's held-out set is drawn from).
    size: 28 (native) or 32 (padded with background).
  """
  if size not in FASHION_MNIST_SIZES:
    raise ValueError(f'`data.image_size` must be one of {FASHION_MNIST_SIZES}'
                     f' for fashion_mnist (28 native, 32 padded), got {size}.')
  return _fashion_mnist_cached(os.path.abspath(fashion_mnist_dir(path)),
                               split, size)


@functools.lru_cache(maxsize=4)
def _fashion_mnist_cached(folder, split, size):
  # A run builds its dataset more than once (the harness, the runner, a
  # prerequisite); decoding 70,000 images each time would dominate a smoke
  # run. The arrays are read-only so no caller can edit the cache.
  images, labels = load_mnist(folder, split)
  images = images if size == 28 else pad_images(images, size)
  images.flags.writeable = False
  labels.flags.writeable = False
  return images, labels


def load_cifar10(path: str, split: str = 'train'):
  """CIFAR-10 from the python pickle batches in `path`."""
  _require(path, CIFAR_LAYOUT)
  names = {'train': [f'data_batch_{i}' for i in range(1, 6)],
           'test': ['test_batch']}.get(split)
  if names is None:
    raise ValueError(f'`split` must be train or test, got {split!r}.')
  images, labels = [], []
  for name in names:
    file = os.path.join(path, name)
    if not os.path.isfile(file):
      raise FileNotFoundError(f'{name} not found in {path!r}; expected '
                              f'{CIFAR_LAYOUT}.')
    with open(file, 'rb') as f:
      batch = pickle.load(f, encoding='bytes')
    data = np.asarray(batch[b'data'], np.uint8)
    images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    labels.append(np.asarray(batch[b'labels'], np.int32))
  return _scale(np.concatenate(images), 255.0), np.concatenate(labels)


def load_png_folder(path: str):
  """PNGs of one size from `path` (flat, or one sub-folder per class)."""
  from PIL import Image
  _require(path, PNG_LAYOUT)
  classes = sorted(d for d in os.listdir(path)
                   if os.path.isdir(os.path.join(path, d)))
  groups = ([(i, os.path.join(path, c)) for i, c in enumerate(classes)]
            if classes else [(-1, path)])
  images, labels = [], []
  for label, folder in groups:
    for name in sorted(os.listdir(folder)):
      if name.lower().endswith('.png'):
        with Image.open(os.path.join(folder, name)) as im:
          array = np.asarray(im)
        images.append(array if array.ndim == 3 else array[..., None])
        labels.append(label)
  if not images:
    raise FileNotFoundError(f'No .png files in {path!r}; expected '
                            f'{PNG_LAYOUT}.')
  shapes = {im.shape for im in images}
  if len(shapes) > 1:
    raise ValueError(f'PNGs in {path!r} differ in shape: {sorted(shapes)}.')
  return _scale(np.stack(images), 255.0), np.asarray(labels, np.int32)


def load_npz(path: str, images_key: str = 'images',
             labels_key: str = 'labels'):
  """Images [N, H, W] or [N, H, W, C] (uint8 0..255, or float already in
  [-1, 1]) and optional labels from an `.npz`."""
  _require(path, f'an .npz with {images_key!r} [N, H, W(, C)] and '
                 f'optionally {labels_key!r} [N]')
  with np.load(path) as f:
    if images_key not in f:
      raise KeyError(f'{path!r} has no array {images_key!r}; it holds '
                     f'{sorted(f.files)}.')
    images = f[images_key]
    labels = (f[labels_key].astype(np.int32) if labels_key in f
              else np.full((len(images),), -1, np.int32))
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or labels.shape != images.shape[:1]:
    raise ValueError(f'{path!r}: need images [N, H, W(, C)] and labels '
                     f'[N], got {images.shape} and {labels.shape}.')
  if images.dtype == np.uint8:
    return _scale(images, 255.0), labels
  images = images.astype(np.float32)
  if images.min() < -1.0 - 1e-6 or images.max() > 1.0 + 1e-6:
    raise ValueError(f'{path!r}: float images must lie in [-1, 1], got '
                     f'[{images.min()}, {images.max()}].')
  return images, labels


class ImageSource(NamedTuple):
  """An image data source: `load(path, size) -> (images, labels)`, whether
  it reads a local `data.path` (else it ships with a package), and for a
  dataset with an official test split `load_test` (the held-out set is then
  drawn from it and the training images are all the run trains on; without
  one the images are split at `data.held_out_fraction`)."""
  load: Callable[[str, int], tuple]
  needs_path: bool = True
  load_test: Callable[[str, int], tuple] | None = None


# One line per source (`data.name`).
SOURCES: dict[str, ImageSource] = {
    'digits': ImageSource(lambda path, size: load_digits(size),
                          needs_path=False),
    'fashion_mnist': ImageSource(
        lambda path, size: load_fashion_mnist(path, 'train', size),
        needs_path=False,
        load_test=lambda path, size: load_fashion_mnist(path, 'test', size)),
    'mnist': ImageSource(lambda path, size: load_mnist(path)),
    'cifar10': ImageSource(lambda path, size: load_cifar10(path)),
    'png_folder': ImageSource(lambda path, size: load_png_folder(path)),
    'image_npz': ImageSource(lambda path, size: load_npz(path)),
}
FORMATS = tuple(SOURCES)


def needs_path(name: str) -> bool:
  """Whether the image source `name` reads a local `data.path`."""
  return name in SOURCES and SOURCES[name].needs_path


def load(name: str, path: str = '', size: int = 8, split: str = 'train'):
  """The images of the source `name` (one of `SOURCES`); `split='test'`
  for one with an official test split."""
  if name not in SOURCES:
    raise ValueError(f'Unknown image dataset {name!r}; known: {FORMATS}.')
  source = SOURCES[name]
  if source.needs_path and not path:
    raise ValueError(f'Image dataset {name!r} needs a local `path`.')
  if split == 'test':
    if source.load_test is None:
      raise ValueError(f'Image dataset {name!r} has no official test split.')
    return source.load_test(path, size)
  return source.load(path, size)


def has_test_split(name: str) -> bool:
  """Whether the image source `name` has an official test split."""
  return name in SOURCES and SOURCES[name].load_test is not None
