"""A new network is one module plus one registry line (tests/ holds one)."""

import jax
import numpy as np
import pytest

from drift_jax import methods
from drift_jax import models
from drift_jax.methods import context
from drift_jax.parallel import sharding as parallel
from drift_jax.train import runner
from tests import affine_network


def _config():
  c = methods.base_config()
  methods.runlocal(c)
  c.model.generator.name = 'affine'
  c.data.name = 'gmm'
  c.eval.plot = False
  c.train.update(steps=40, eval_every=40, checkpoint_every=40, log_every=10)
  return c


def test_unregistered_network_is_refused_naming_the_key():
  c = methods.base_config()
  c.model.generator.name = 'affine'
  with pytest.raises(ValueError, match='model.generator.name'):
    methods.validate(c, 1)


def test_one_registry_line_makes_a_network_trainable(monkeypatch, tmp_path):
  # The registry line:
  monkeypatch.setitem(models.GENERATORS, 'affine', affine_network.GENERATOR)
  c = _config()
  assert c.model.generator.affine_scale == 1.0  # its keys are composed
  c.model.generator.affine_scale = 0.0
  with pytest.raises(ValueError, match='model.generator.affine_scale'):
    methods.validate(c, 1)
  c.model.generator.affine_scale = 1.0
  summary = runner.train_and_evaluate(c, str(tmp_path))
  assert summary['step'] == 40
  assert np.isfinite(summary['eval/energy_distance'])
  # The run's state holds this network: an [8, 2] kernel (runlocal's
  # noise_dim 8 to the ring's 2 dimensions), and no MLP's [8, 32] layer.
  ctx = context.RunContext(dim=2, mesh=parallel.make_mesh(1))
  method = methods.get(c.method).make(c, ctx)
  shapes = {leaf.shape for leaf in jax.tree.leaves(
      jax.eval_shape(method.init, jax.random.key(0)))}
  assert (8, 2) in shapes and (8, 32) not in shapes
