"""A field normalisation with an option of its own is one module plus one
registry line (tests/scaled_nw_field.py): the option appears in
`FieldSpec.options` and in the `field` config section, reaches the field
through the spec, is checked, and trains through the runner."""

import numpy as np
import pytest

from drift_jax import fields
from drift_jax import methods
from drift_jax.fields import normalizations
from drift_jax.methods import drifting
from drift_jax.train import runner
from tests import scaled_nw_field


@pytest.fixture
def registered(monkeypatch):
  monkeypatch.setitem(normalizations.NORMALIZATIONS, scaled_nw_field.NAME,
                      scaled_nw_field.NORMALIZATION)
  # The section drifting's CONFIG would hold had the line been there at
  # import time.
  monkeypatch.setitem(drifting.CONFIG, 'field',
                      fields.FieldSpec.config_section())


def _points():
  rng = np.random.default_rng(0)
  return (rng.normal(size=(32, 2)).astype(np.float32),
          rng.normal(size=(40, 2)).astype(np.float32))


def test_the_option_scales_the_field(registered):
  x, pos = _points()
  nw = fields.FieldSpec(normalization='nw')(x, pos, x)
  scaled = fields.FieldSpec(normalization='scaled_nw',
                            options={'nw_gain': 2.5})(x, pos, x)
  # Same kernel sums times 2.5: float32 round-off only.
  np.testing.assert_allclose(scaled, 2.5 * np.asarray(nw), rtol=1e-6,
                             atol=1e-7)
  default = fields.FieldSpec(normalization='scaled_nw')
  assert default.option('nw_gain') == 1.0


def test_the_option_is_a_config_key_and_is_checked(registered):
  c = methods.base_config()
  assert c.field.nw_gain == 1.0  # derived from the registry entry
  c.field.update(normalization='scaled_nw', nw_gain=3.0)
  assert fields.FieldSpec.from_config(c.field).option('nw_gain') == 3.0
  c.field.nw_gain = -1.0
  with pytest.raises(ValueError, match='nw_gain'):
    methods.validate(c, 1)
  with pytest.raises(ValueError, match=r"\['gain'\] are not options"):
    fields.FieldSpec(normalization='scaled_nw', options={'gain': 2.0})


def test_a_run_with_the_new_field_trains(registered, tmp_path):
  c = methods.base_config()
  methods.runlocal(c)
  c.eval.plot = False
  c.field.update(normalization='scaled_nw', nw_gain=2.0)
  summary = runner.train_and_evaluate(c, str(tmp_path))
  assert np.isfinite(summary['train/loss'])
  assert summary['step'] == c.train.steps
