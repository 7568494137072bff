"""Inception FID: the Fréchet distance in the pool3 features of the
InceptionV3 that pytorch-fid uses (Heusel et al. 2017; Seitzer's
pytorch-fid, the 2015 TensorFlow weights with its FID-specific blocks),
for users who bring those weights. Nothing is downloaded.

`eval.inception_weights` is the path of the weights: pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth` read with torch when torch is
installed, or the same state dict saved as `.npz` (one array per
state-dict key, in PyTorch's layouts), which needs no torch:

  python -c "import numpy, torch
  sd = torch.load('pt_inception-2015-12-05-6726825d.pth')
  numpy.savez('inception.npz', **{k: v.numpy() for k, v in sd.items()})"

The network is written here in JAX from pytorch-fid's definition:
BasicConv2d = conv (no bias) + BatchNorm (eps 1e-3, running statistics) +
ReLU; the stem, Mixed_5b-5d (FIDInceptionA: average pooling that leaves
the padding out), Mixed_6a (InceptionB), Mixed_6b-6e (FIDInceptionC),
Mixed_7a (InceptionD), Mixed_7b (FIDInceptionE_1) and Mixed_7c
(FIDInceptionE_2: max pooling in the pool branch), then the global
average: 2048 features. Images in [-1, 1] (pytorch-fid's normalised
input) are resized bilinearly (align_corners=False) to 299 x 299;
grey images are repeated over three channels. The floor scores training
images against the held-out ones the same way.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from drift_jax.evaluators import sample_metrics
from drift_jax.evaluators.metric import Evaluator
from drift_jax.evaluators.metric import Metric

INPUT_SIZE = 299
FEATURES = 2048
BN_EPS = 1e-3
BATCH = 50  # images per jitted call (memory)


def _conv(name, cin, cout, kernel, stride=1, padding=0):
  kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
  ph, pw = (padding, padding) if isinstance(padding, int) else padding
  return dict(name=name, cin=cin, cout=cout, kernel=(kh, kw),
              stride=stride, padding=((ph, ph), (pw, pw)))


def _block_a(p, cin, pool):
  return [_conv(f'{p}.branch1x1', cin, 64, 1),
          _conv(f'{p}.branch5x5_1', cin, 48, 1),
          _conv(f'{p}.branch5x5_2', 48, 64, 5, padding=2),
          _conv(f'{p}.branch3x3dbl_1', cin, 64, 1),
          _conv(f'{p}.branch3x3dbl_2', 64, 96, 3, padding=1),
          _conv(f'{p}.branch3x3dbl_3', 96, 96, 3, padding=1),
          _conv(f'{p}.branch_pool', cin, pool, 1)]


def _block_b(p, cin):
  return [_conv(f'{p}.branch3x3', cin, 384, 3, stride=2),
          _conv(f'{p}.branch3x3dbl_1', cin, 64, 1),
          _conv(f'{p}.branch3x3dbl_2', 64, 96, 3, padding=1),
          _conv(f'{p}.branch3x3dbl_3', 96, 96, 3, stride=2)]


def _block_c(p, cin, c7):
  return [_conv(f'{p}.branch1x1', cin, 192, 1),
          _conv(f'{p}.branch7x7_1', cin, c7, 1),
          _conv(f'{p}.branch7x7_2', c7, c7, (1, 7), padding=(0, 3)),
          _conv(f'{p}.branch7x7_3', c7, 192, (7, 1), padding=(3, 0)),
          _conv(f'{p}.branch7x7dbl_1', cin, c7, 1),
          _conv(f'{p}.branch7x7dbl_2', c7, c7, (7, 1), padding=(3, 0)),
          _conv(f'{p}.branch7x7dbl_3', c7, c7, (1, 7), padding=(0, 3)),
          _conv(f'{p}.branch7x7dbl_4', c7, c7, (7, 1), padding=(3, 0)),
          _conv(f'{p}.branch7x7dbl_5', c7, 192, (1, 7), padding=(0, 3)),
          _conv(f'{p}.branch_pool', cin, 192, 1)]


def _block_d(p, cin):
  return [_conv(f'{p}.branch3x3_1', cin, 192, 1),
          _conv(f'{p}.branch3x3_2', 192, 320, 3, stride=2),
          _conv(f'{p}.branch7x7x3_1', cin, 192, 1),
          _conv(f'{p}.branch7x7x3_2', 192, 192, (1, 7), padding=(0, 3)),
          _conv(f'{p}.branch7x7x3_3', 192, 192, (7, 1), padding=(3, 0)),
          _conv(f'{p}.branch7x7x3_4', 192, 192, 3, stride=2)]


def _block_e(p, cin):
  return [_conv(f'{p}.branch1x1', cin, 320, 1),
          _conv(f'{p}.branch3x3_1', cin, 384, 1),
          _conv(f'{p}.branch3x3_2a', 384, 384, (1, 3), padding=(0, 1)),
          _conv(f'{p}.branch3x3_2b', 384, 384, (3, 1), padding=(1, 0)),
          _conv(f'{p}.branch3x3dbl_1', cin, 448, 1),
          _conv(f'{p}.branch3x3dbl_2', 448, 384, 3, padding=1),
          _conv(f'{p}.branch3x3dbl_3a', 384, 384, (1, 3), padding=(0, 1)),
          _conv(f'{p}.branch3x3dbl_3b', 384, 384, (3, 1), padding=(1, 0)),
          _conv(f'{p}.branch_pool', cin, 192, 1)]


def layers() -> dict[str, dict]:
  """Every BasicConv2d of the network by its state-dict prefix."""
  out = [_conv('Conv2d_1a_3x3', 3, 32, 3, stride=2),
         _conv('Conv2d_2a_3x3', 32, 32, 3),
         _conv('Conv2d_2b_3x3', 32, 64, 3, padding=1),
         _conv('Conv2d_3b_1x1', 64, 80, 1),
         _conv('Conv2d_4a_3x3', 80, 192, 3)]
  out += _block_a('Mixed_5b', 192, 32) + _block_a('Mixed_5c', 256, 64)
  out += _block_a('Mixed_5d', 288, 64) + _block_b('Mixed_6a', 288)
  for name, c7 in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160),
                   ('Mixed_6e', 192)):
    out += _block_c(name, 768, c7)
  out += _block_d('Mixed_7a', 768) + _block_e('Mixed_7b', 1280)
  out += _block_e('Mixed_7c', 2048)
  return {layer['name']: layer for layer in out}


def state_dict_shapes() -> dict[str, tuple]:
  """The state-dict keys the features need, with PyTorch's shapes."""
  shapes = {}
  for name, layer in layers().items():
    kh, kw = layer['kernel']
    shapes[f'{name}.conv.weight'] = (layer['cout'], layer['cin'], kh, kw)
    for stat in ('weight', 'bias', 'running_mean', 'running_var'):
      shapes[f'{name}.bn.{stat}'] = (layer['cout'],)
  return shapes


def params_from_state_dict(state: dict) -> dict:
  """{prefix: (HWIO kernel, scale, shift)}: each BatchNorm folded into a
  per-channel affine of its conv's output (eval mode). One error line
  names the first missing key or wrong shape; keys the features do not
  use (fc, AuxLogits, num_batches_tracked) are ignored."""
  for key, shape in state_dict_shapes().items():
    if key not in state:
      raise ValueError(f'`eval.inception_weights`: key {key!r} is missing '
                       '(not pytorch-fid InceptionV3 weights?).')
    if tuple(np.shape(state[key])) != shape:
      raise ValueError(f'`eval.inception_weights`: {key!r} has shape '
                       f'{tuple(np.shape(state[key]))}, expected {shape}.')
  params = {}
  for name in layers():
    bn = {s: np.asarray(state[f'{name}.bn.{s}'], np.float32)
          for s in ('weight', 'bias', 'running_mean', 'running_var')}
    scale = bn['weight'] / np.sqrt(bn['running_var'] + BN_EPS)
    shift = bn['bias'] - bn['running_mean'] * scale
    kernel = np.transpose(np.asarray(state[f'{name}.conv.weight'],
                                     np.float32), (2, 3, 1, 0))
    params[name] = (jnp.asarray(kernel), jnp.asarray(scale),
                    jnp.asarray(shift))
  return params


def load_state_dict(path: str) -> dict:
  """The weights file at `path`: `.npz`, or a torch `.pth` (needs torch)."""
  if not path:
    raise ValueError('The inception evaluator needs `eval.inception_weights`'
                     ': the path of pytorch-fid\'s InceptionV3 weights '
                     '(.pth, or .npz of its state dict; nothing is '
                     'downloaded).')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'`eval.inception_weights`: no file {path!r}.')
  if path.endswith('.npz'):
    with np.load(path) as f:
      return {k: f[k] for k in f.files}
  try:
    import torch  # noqa: PLC0415 (optional: only for .pth files)
  except ImportError as e:
    raise ValueError(f'`eval.inception_weights`: {path!r} is not .npz and '
                     'torch is not installed to read it; convert it once '
                     '(drift_jax/evaluators/inception.py says how).') from e
  return {k: v.numpy() for k, v in torch.load(path, map_location='cpu',
                                               weights_only=True).items()}


def _basic(params, name, x):
  kernel, scale, shift = params[name]
  layer = LAYERS[name]
  y = lax.conv_general_dilated(
      x, kernel, (layer['stride'],) * 2, layer['padding'],
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return jax.nn.relu(y * scale + shift)


def _max_pool(x, stride, padding='VALID'):
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1),
                           (1, stride, stride, 1), padding)


def _avg_pool_excluding_padding(x):
  """3x3, stride 1, padding 1, count_include_pad=False."""
  pads = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1),
                            pads)
  count = lax.reduce_window(jnp.ones(x.shape[1:3])[None, :, :, None], 0.0,
                            lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pads)
  return total / count


def _a(params, p, x):
  b = lambda n, h: _basic(params, f'{p}.{n}', h)
  return jnp.concatenate([
      b('branch1x1', x), b('branch5x5_2', b('branch5x5_1', x)),
      b('branch3x3dbl_3', b('branch3x3dbl_2', b('branch3x3dbl_1', x))),
      b('branch_pool', _avg_pool_excluding_padding(x))], axis=-1)


def _b(params, p, x):
  b = lambda n, h: _basic(params, f'{p}.{n}', h)
  return jnp.concatenate([
      b('branch3x3', x),
      b('branch3x3dbl_3', b('branch3x3dbl_2', b('branch3x3dbl_1', x))),
      _max_pool(x, 2)], axis=-1)


def _c(params, p, x):
  b = lambda n, h: _basic(params, f'{p}.{n}', h)
  seven = b('branch7x7_3', b('branch7x7_2', b('branch7x7_1', x)))
  double = x
  for i in range(1, 6):
    double = b(f'branch7x7dbl_{i}', double)
  return jnp.concatenate([
      b('branch1x1', x), seven, double,
      b('branch_pool', _avg_pool_excluding_padding(x))], axis=-1)


def _d(params, p, x):
  b = lambda n, h: _basic(params, f'{p}.{n}', h)
  seven = x
  for i in range(1, 5):
    seven = b(f'branch7x7x3_{i}', seven)
  return jnp.concatenate([b('branch3x3_2', b('branch3x3_1', x)), seven,
                          _max_pool(x, 2)], axis=-1)


def _e(params, p, x, pool):
  b = lambda n, h: _basic(params, f'{p}.{n}', h)
  three = b('branch3x3_1', x)
  double = b('branch3x3dbl_2', b('branch3x3dbl_1', x))
  pooled = (_avg_pool_excluding_padding(x) if pool == 'avg'
            else _max_pool(x, 1, ((0, 0), (1, 1), (1, 1), (0, 0))))
  return jnp.concatenate([
      b('branch1x1', x), b('branch3x3_2a', three), b('branch3x3_2b', three),
      b('branch3x3dbl_3a', double), b('branch3x3dbl_3b', double),
      b('branch_pool', pooled)], axis=-1)


def pool3_features(params, images):
  """[N, H, W, C] images in [-1, 1] (C = 1 or 3) -> [N, 2048]."""
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  x = jax.image.resize(images, (images.shape[0], INPUT_SIZE, INPUT_SIZE, 3),
                       'bilinear', antialias=False)
  for name in ('Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3'):
    x = _basic(params, name, x)
  x = _max_pool(x, 2)
  x = _basic(params, 'Conv2d_4a_3x3', _basic(params, 'Conv2d_3b_1x1', x))
  x = _max_pool(x, 2)
  for name in ('Mixed_5b', 'Mixed_5c', 'Mixed_5d'):
    x = _a(params, name, x)
  x = _b(params, 'Mixed_6a', x)
  for name in ('Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e'):
    x = _c(params, name, x)
  x = _d(params, 'Mixed_7a', x)
  x = _e(params, 'Mixed_7b', x, 'avg')
  x = _e(params, 'Mixed_7c', x, 'max')
  return jnp.mean(x, axis=(1, 2))


LAYERS = layers()


class InceptionFID:
  """Callable samples [n, D] -> FID against the held-out images, with its
  floor (training images against the held-out ones)."""

  def __init__(self, dataset, weights_path: str):
    if dataset.image_shape is None or dataset.image_shape[-1] not in (1, 3):
      raise ValueError('The inception evaluator needs grey or RGB images; '
                       f'data have shape {dataset.image_shape}.')
    self._shape = tuple(dataset.image_shape)
    self._params = params_from_state_dict(load_state_dict(weights_path))
    self._embed = jax.jit(pool3_features)
    self._held_out = self.features(dataset.held_out)
    self.floors = {'eval/inception_fid_floor': float(
        sample_metrics.frechet_distance(
            self.features(dataset.floor_reference), self._held_out))}

  def features(self, flat) -> np.ndarray:
    flat = np.asarray(flat, np.float32)
    images = flat.reshape((-1,) + self._shape)
    return np.concatenate([
        np.asarray(self._embed(self._params, images[i:i + BATCH]))
        for i in range(0, len(images), BATCH)]).astype(np.float64)

  def __call__(self, samples) -> dict:
    return {'eval/inception_fid': float(sample_metrics.frechet_distance(
        self.features(samples), self._held_out))}


def _make(dataset, config, *, classifier=None, num_classes=0):
  del classifier, num_classes
  return InceptionFID(dataset, config.eval.get('inception_weights', ''))


EVALUATOR = Evaluator(
    metrics=(
        Metric('eval/inception_fid', 'Inception FID',
               floor='eval/inception_fid_floor',
               ratio_label='Inception FID / floor', kept=True, tabled=True,
               positive=True),
        Metric('eval/inception_fid_floor', 'Inception FID floor', kept=True),
    ),
    needs=('images',), make=_make)
