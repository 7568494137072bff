"""The latent space of a latent-space run (`latent.autoencoder`).

Drifting at scale runs in SD-VAE latents (Deng et al. 2026 §4: 32 x 32 x 4
for ImageNet 256), and so does DMD2 at 512 and beyond: the generator, the
field, the teacher and the fake score all see latents, and samples are
decoded to pixels before anything scores them. Here a latent space is
- `latent.autoencoder='train'`: a `methods.autoencoder` run trained first
  in the run's workdir (`autoencoder/`), or the directory of a finished
  one;
- `latent.autoencoder='python:FILE'`: a user's own encoder and decoder, a
  Python file defining `load(image_shape) -> dict(encode=fn, decode=fn,
  latent_shape=(h, w, c))`, where `encode` maps flat images [N, H W C] in
  [-1, 1] to flat latents [N, h w c] and `decode` maps them back (a
  converted SD-VAE is the case this is for; `tests/latent_test.py` has a
  small example).
Latents are divided by their standard deviation over the training set, as
the latent diffusion models scale theirs to unit variance, so the
config's noise levels and temperatures keep their meaning.

The training and held-out latents are encoded once per dataset and latent
space and cached (`latent_dataset`), keyed by a digest of the images and
of the encoder's weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from drift_jax.encoders import pretrained
from drift_jax.methods import autoencoder as method
from drift_jax.train import reporting

PYTHON_PREFIX = 'python:'
CACHE_ENV = 'DRIFT_JAX_LATENT_CACHE'
ENCODE_CHUNK = 1000  # images a call when encoding a dataset


class LatentSpace(NamedTuple):
  """Frozen encode [N, D] -> [N, d] and decode [N, d] -> [N, D] (latents
  scaled to unit standard deviation), the latent image shape, a digest of
  the encoder's weights (the cache key) and what it cost."""
  encode: Callable
  decode: Callable
  latent_shape: tuple
  digest: str
  meta: dict


def load(choice: str, dataset, allow_unfinished: bool = False
         ) -> LatentSpace:
  """The latent space `choice` names: an autoencoder run's directory or
  'python:FILE' (module doc), for `dataset`'s images."""
  if dataset.image_shape is None:
    raise ValueError('`latent.autoencoder` needs image data; data '
                     f'{dataset.name!r} has none.')
  if choice.startswith(PYTHON_PREFIX):
    encode, decode, shape, digest = _from_python(
        choice[len(PYTHON_PREFIX):], dataset.image_shape)
    meta = {'steps': 0, 'seconds': 0.0, 'source': choice}
  else:
    encode, decode, shape, digest, meta = _from_run(choice, dataset,
                                                    allow_unfinished)
  scale = float(np.std(_encode_all(encode, dataset.train)))
  if not scale > 0:
    raise ValueError(f'The latents of {choice!r} have standard deviation '
                     f'{scale}: the encoder maps every image to one point.')
  meta = dict(meta, scale=scale)
  return LatentSpace(lambda x: encode(x) / scale,
                     lambda z: decode(z * scale), shape,
                     f'{digest}-{scale:.6e}', meta)


def _from_run(directory, dataset, allow_unfinished):
  run = pretrained.read_run(
      directory, method.NAME,
      f'Autoencoder directory {directory!r} holds no autoencoder run '
      "(train one with latent.autoencoder='train').",
      f'Autoencoder {directory!r} is a {{method}} run; '
      '`latent.autoencoder` needs a `method=autoencoder` run.')
  image_shape = tuple(dataset.image_shape)
  spec = method.make_spec(run.autoencoder, image_shape)
  state, budget = pretrained.restore_finished(
      directory, run, 'Autoencoder', method.abstract_state(spec),
      dataset.name, str(image_shape), allow_unfinished)
  model = nnx.merge(spec.graphdef, state['params'])
  encode = jax.jit(lambda x: model.encode(x))
  decode = jax.jit(lambda z: model.decode(z))
  records = [r for r in reporting.read_metrics(directory) if method.MSE in r]
  meta = dict(steps=int(budget['steps']),
              seconds=float(budget['wall_seconds']),
              round_trip_mse=(records[-1][method.MSE] if records
                              else float('nan')))
  return (encode, decode, tuple(model.latent_shape),
          _digest(jax.tree.leaves(state['params'])), meta)


def _from_python(path, image_shape):
  if not os.path.isfile(path):
    raise FileNotFoundError(f'`latent.autoencoder`: {path!r} is not a '
                            'file (python:FILE names a Python file).')
  spec = importlib.util.spec_from_file_location('user_latent', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'load'):
    raise ValueError(f'`latent.autoencoder`: {path!r} defines no '
                     '`load(image_shape)`.')
  found = module.load(tuple(image_shape))
  missing = {'encode', 'decode', 'latent_shape'} - set(found)
  if missing:
    raise ValueError(f'`latent.autoencoder`: {path!r}\'s load() returned '
                     f'no {sorted(missing)}.')
  with open(path, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()[:16]
  return (found['encode'], found['decode'], tuple(found['latent_shape']),
          digest)


def _digest(arrays) -> str:
  h = hashlib.sha256()
  for a in arrays:
    h.update(np.ascontiguousarray(np.asarray(a)).tobytes())
  return h.hexdigest()[:16]


def _encode_all(encode, images) -> np.ndarray:
  return np.concatenate([np.asarray(encode(jnp.asarray(
      images[i:i + ENCODE_CHUNK]))) for i in range(0, len(images),
                                                   ENCODE_CHUNK)])


def to_pixels(decode, samples) -> np.ndarray:
  """A run's samples in pixels: latents [N, d] decoded to [N, D] by
  `decode` (a latent-space run's `Dataset.decode`), `ENCODE_CHUNK` at a
  time, or the samples as they are when it is None."""
  return samples if decode is None else _encode_all(decode, samples)


def cache_dir() -> str:
  return os.environ.get(CACHE_ENV, os.path.join(
      os.path.expanduser('~'), '.cache', 'drift_jax', 'latents'))


def latent_dataset(dataset, space: LatentSpace):
  """`dataset` with its training and held-out images replaced by their
  latents (`image_shape` the latent shape), encoded once and cached under
  `cache_dir()` by a digest of the images and of the latent space."""
  key = _digest([dataset.train, dataset.held_out, dataset.floor_reference]
                ) + '-' + hashlib.sha256(space.digest.encode()
                                         ).hexdigest()[:16]
  path = os.path.join(cache_dir(), f'{key}.npz')
  if os.path.exists(path):
    with np.load(path) as cached:
      arrays = {k: cached[k] for k in cached.files}
  else:
    arrays = {name: _encode_all(space.encode, getattr(dataset, name))
              for name in ('train', 'held_out', 'floor_reference')}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Written whole, then renamed: a reader never sees half a cache.
    np.savez(path + '.tmp.npz', **arrays)
    os.replace(path + '.tmp.npz', path)
  return dataclasses.replace(
      dataset, dim=arrays['train'].shape[1], image_shape=space.latent_shape,
      pixels=dataset, decode=space.decode, **arrays)
