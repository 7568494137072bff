"""experiments/image_quality.py's --set: parsed, applied, refused by name."""

import pytest
from absl import app
from absl import flags
from absl.testing import flagsaver

from experiments import image_quality

FLAGS = flags.FLAGS


@pytest.fixture(autouse=True)
def _parsed_flags():
  if not FLAGS.is_parsed():
    FLAGS(['image_quality'])


def test_set_overrides_reach_the_config_and_keep_the_rest():
  with flagsaver.flagsaver(set=['dmd.regression_weight=0.25',
                                'train.steps=7', 'features.encoder_kind=mae']):
    overrides = image_quality._overrides()  # noqa: SLF001
    assert overrides == {'dmd.regression_weight': 0.25, 'train.steps': 7,
                         'features.encoder_kind': 'mae'}
    config = image_quality._config('method=dmd', overrides)  # noqa: SLF001
  assert (config.dmd.regression_weight, config.train.steps) == (0.25, 7)
  # DMD's own defaults still fill every key --set left alone.
  default = image_quality._config('method=dmd')  # noqa: SLF001
  assert config.dmd.teacher_steps == default.dmd.teacher_steps
  assert default.train.steps != 7


@pytest.mark.parametrize('item,match', [('nokey', 'key=value'),
                                        ('dmd.no_such_key=1', 'no_such_key')])
def test_bad_set_is_one_usage_error_naming_it(item, match):
  with flagsaver.flagsaver(set=[item]):
    with pytest.raises(app.UsageError, match=match):
      image_quality._config('method=dmd', image_quality._overrides())  # noqa: SLF001
