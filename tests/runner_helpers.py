"""Shared helpers for the tests: tiny configs, configs loaded as absl does,
metric readers."""

import math

import jax
import numpy as np
from absl import flags
from ml_collections import config_flags

from drift_jax import methods
from drift_jax.methods import diffusion
from drift_jax.methods import dmd
from drift_jax.methods.context import RunContext
from drift_jax.parallel import sharding as parallel
from drift_jax.train import reporting

TINY_IMAGE_SHAPE = (8, 8, 1)


def tiny_config(method='drifting', dataset='checkerboard', **train):
  """A runlocal config without plots, with `train` overrides."""
  c = methods.base_config()
  methods.runlocal(c)
  c.method = method
  c.data.name = dataset
  c.eval.plot = False
  c.train.update(train)
  return c


def tiny_image_dmd_config(**flat_keys):
  """A runlocal DMD config on 8x8 images: a tiny conv generator, a U-Net
  fake denoiser from scratch, generated batches of 4; `flat_keys` (dotted)
  on top."""
  c = methods.base_config()
  methods.runlocal(c)
  c.update_from_flattened_dict({
      'method': 'dmd', 'dmd.teacher': '/unused', 'dmd.fake_init': 'scratch',
      'model.generator.noise_dim': 4, 'model.generator.name': 'conv',
      'model.generator.channels': (4, 4), 'model.denoiser.name': 'unet',
      **flat_keys})
  c.train.gen_batch_size = 4
  return c


def tiny_image_dmd(c, mesh=None):
  """(DMD method, its denoiser network) for `c` on 8x8 images, with a
  randomly initialised teacher of the denoiser's architecture, on `mesh`
  (default: one device)."""
  ctx, den = tiny_image_dmd_context(c, mesh)
  return dmd.make(c, ctx), den


def tiny_image_dmd_context(c, mesh=None):
  """(run context, denoiser network) of `tiny_image_dmd`."""
  dim = math.prod(TINY_IMAGE_SHAPE)
  den = diffusion.make_denoiser_net(c, dim, image_shape=TINY_IMAGE_SHAPE)
  teacher = dmd.Teacher(den.apply, den.init(jax.random.key(7)))
  return RunContext(dim=dim, mesh=mesh or parallel.make_mesh(1),
                    image_shape=TINY_IMAGE_SHAPE,
                    prerequisites={'teacher': teacher}), den


def losses(workdir):
  """{step: train/loss} from a run's metrics.jsonl."""
  return {r['step']: r['train/loss'] for r in reporting.read_metrics(workdir)
          if 'train/loss' in r}


def load_flags_config(argv_tail):
  """(config, overrides) as experiments/main.py gets them from
  `--config=FILE:ARGS --config.a.b=...`."""
  argv = ['main'] + argv_tail
  values = flags.FlagValues()
  # sys_argv: config_flags finds the --config.a.b overrides in it.
  config_flags.DEFINE_config_file('config', None, flag_values=values,
                                  lock_config=True, sys_argv=argv)
  values(argv)
  return values.config, config_flags.get_override_values(values['config'])


def _parameters(state):
  """The floating leaves of every network's parameters, flat."""
  return np.concatenate([
      np.ravel(np.asarray(leaf)) for path, leaf in
      jax.tree_util.tree_leaves_with_path(state)
      if "['params']" in jax.tree_util.keystr(path)
      and np.issubdtype(leaf.dtype, np.floating)])


def disagreement(state, reference, initial) -> float:
  """|theta - theta_ref| / |theta_ref - theta_0| over all parameters: how
  far a state's weights are from a reference's, as a fraction of how far
  training moved them. A norm, not a largest entry: Adam moves every
  weight by ~lr a step whatever its gradient's size, so a weight whose
  gradient is rounding noise (a conv bias a normalisation removes: its
  Adam moment is 1e-9 of the largest) moves by ~lr with a sign that any
  other reduction order may flip, while the whole stays put."""
  theta = _parameters(reference)
  return float(np.linalg.norm(_parameters(state) - theta)
               / np.linalg.norm(theta - _parameters(initial)))
