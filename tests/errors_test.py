"""Bad input raises a ValueError that names the argument; the NaN policy."""

import jax
import jax.numpy as jnp
import pytest

from drift_jax import fields
from drift_jax.config import config_lib
from drift_jax.theory import scores

X = jnp.zeros((8, 2)) + jnp.arange(8.0)[:, None]
POS = jnp.ones((6, 2))


@pytest.mark.parametrize('kwargs, match', [
    (dict(pos=jnp.ones((6, 3))), 'Feature dimensions differ'),
    (dict(x=jnp.ones((8,))), '`x` must have rank 2'),
    (dict(neg=jnp.ones((2, 8, 2))), '`neg` must have rank 2'),
    (dict(pos=jnp.ones((0, 2))), '`pos` must be non-empty'),
    (dict(temperature=0.0), '`temperature` must be positive'),
    (dict(temperature=-1.0), '`temperature` must be positive'),
    (dict(temperature=float('nan')), '`temperature` must be positive'),
    (dict(temperature=(0.1, -0.2)), '`temperature` must be positive'),
    (dict(temperature=()), '`temperature` must not be an empty'),
    (dict(temperature=jnp.array(0.1)), '`temperature` must be a Python'),
    (dict(kernel='epanechnikov'), 'Unknown `kernel`'),
    (dict(normalization='softmax'), 'Unknown `normalization`'),
    (dict(neg=jnp.ones((5, 2))), '`mask_self=True`.*len\\(neg\\)'),
    (dict(x=jnp.ones((1, 2)), neg=jnp.ones((1, 2))), 'at least 2'),
    (dict(pos_weights=jnp.ones(5)), '`pos_weights` must have shape'),
    (dict(neg_weights=-jnp.ones(8)), '`neg_weights` must be finite'),
    (dict(affinity_floor=1.5), '`affinity_floor` must be in'),
    (dict(affinity_floor=1e-6, normalization='nw'), '`affinity_floor` only'),
    # 0, like None, is auto (the config's empty value).
    (dict(block_size=-1), '`block_size` must be'),
])
def test_drifting_field_bad_arguments(kwargs, match):
  args = dict(x=X, pos=POS, neg=X)
  args.update(kwargs)
  x, pos, neg = args.pop('x'), args.pop('pos'), args.pop('neg')
  with pytest.raises(ValueError, match=match):
    fields.drifting_field(x, pos, neg, **args)


def test_errors_are_raised_at_trace_time_under_jit():
  with pytest.raises(ValueError, match='Feature dimensions differ'):
    jax.jit(lambda a, b: fields.drifting_field(a, b, a))(X, jnp.ones((6, 3)))


def test_other_functions_name_their_arguments():
  with pytest.raises(ValueError, match='`samples`'):
    scores.kde_denoiser(X, jnp.ones((3,)), 0.5)
  with pytest.raises(ValueError, match='`sigma`'):
    scores.kde_denoiser(X, POS, 0.0)
  with pytest.raises(ValueError, match='`sigma` must be a scalar or have'):
    scores.kde_denoiser(X, POS, jnp.ones(3))
  with pytest.raises(ValueError, match='`temperature` must be a single'):
    fields.mean_shift(X, POS, temperature=(0.1, 0.2))
  with pytest.raises(ValueError, match='`exclude_self=True`'):
    fields.mean_shift(X, POS, exclude_self=True)


# NaN policy: concrete (eager) inputs with NaN/Inf raise a ValueError naming
# the argument; traced inputs (inside jit) cannot be inspected without a host
# sync, so NaN propagates into the output, where a training loop sees it.


@pytest.mark.parametrize('name', ['x', 'pos', 'neg'])
def test_nan_in_eager_input_raises(name):
  args = dict(x=X, pos=POS, neg=jnp.ones((8, 2)))
  args[name] = args[name].at[1, 0].set(jnp.nan)
  with pytest.raises(ValueError, match=f'`{name}` contains NaN'):
    fields.drifting_field(args['x'], args['pos'], args['neg'],
                          mask_self=False)


def test_nan_under_jit_propagates_to_the_output():
  pos = POS.at[0, 0].set(jnp.nan)
  v = jax.jit(lambda a, b: fields.drifting_field(a, b, a))(X, pos)
  assert bool(jnp.any(jnp.isnan(v)))


def test_a_config_file_loads_from_outside_the_checkout(tmp_path,
                                                       monkeypatch):
  """'configs/x.py' is found from the checkout root when the working
  directory is elsewhere (notebooks run from notebooks/)."""
  monkeypatch.chdir(tmp_path)
  c = config_lib.load_config_file('configs/toy2d.py:runlocal')
  assert c.data.name == 'checkerboard'
  with pytest.raises(FileNotFoundError, match='configs/nope.py'):
    config_lib.load_config_file('configs/nope.py')
