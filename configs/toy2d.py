r"""2-D toys (and any point cloud file) for drifting, diffusion and DMD.

python -m experiments.main --config configs/toy2d.py:method=drifting,dataset=checkerboard --workdir runs/x
python -m experiments.main --config configs/toy2d.py:method=dmd,dataset=swiss_roll --workdir runs/dmd
python -m experiments.main --config configs/toy2d.py:dataset=file,path=cloud.npy --workdir runs/f
python -m experiments.main --config configs/toy2d.py:recipe --workdir runs/demo

Arguments (after the colon, comma separated):
  method: drifting | diffusion | dmd.
  dataset: checkerboard, swiss_roll, two_moons, rings, eight_gaussians,
    twenty_five_gaussians, two_mode, or file (with path=..., key=...).
  teacher: for dmd, oracle (mixture datasets only), train, or the workdir of
    a diffusion run; default oracle on mixtures, train otherwise.
  recipe: the drifting paper's demo recipe exactly (MLP 32->256x3->2, Adam
    1e-3, 2000 steps, batch 2048/2048, Laplace tau=0.05, bidirectional,
    self-mask, no EMA).
  runlocal: tiny sizes for tests.
Without `recipe` the drifting defaults add what the quality bar in
experiments/toy_quality.py measured to help (see README): 5,000 steps,
cosine decay, EMA, and the authors' full field recipe (three temperatures,
normalised distances and drifts), at the learning rate the leaderboard
chose across its tasks (3e-3; docs/leaderboard.md).
"""

from drift_jax import methods
from drift_jax.config import config_lib
from drift_jax.methods import drifting
from drift_jax.theory import distributions


def get_config(arg=None):
  a = config_lib.parse_arg(arg, method='drifting', dataset='checkerboard',
                           path='', key='', teacher='', recipe=False,
                           runlocal=False)
  c = methods.base_config()
  c.method = a.method
  c.data.update(name=a.dataset, path=a.path, key=a.key)
  is_mixture = a.dataset in distributions.TOY_MIXTURES
  c.dmd.teacher = a.teacher or ('oracle' if is_mixture else 'train')
  if not a.recipe:
    methods.improved_toy_defaults(c)
    if a.method == 'drifting':
      # The authors' field recipe at the leaderboard's learning rate.
      drifting.leaderboard_defaults(c)
    else:
      drifting.authors_field_recipe(c)
  if a.runlocal:
    methods.runlocal(c)
  return c
