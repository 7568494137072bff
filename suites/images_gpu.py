"""The images suite at GPU size: the same five methods on class-conditional
Fashion-MNIST padded to 32 x 32, with DiT-S/2 generators and denoisers,
one-hour budgets per run. Too large for the CPU; `--dry_run` validates
every cell's config there.

  python -m experiments.compare --suite suites/images_gpu.py --dry_run
  python -m experiments.compare --suite suites/images_gpu.py   # on a GPU
"""

import os

from drift_jax.config import config_lib

images = config_lib.load_module(
    os.path.join(os.path.dirname(__file__), 'images.py'), '_images_suite')

TASK_CONFIG = ('configs/fashion_mnist.py:conditional,generator=dit,'
               'denoiser=dit,size=32')
SIZES = {'model.generator.dit_size': 'S/2', 'model.denoiser.dit_size': 'S/2',
         'train.batch_size': 256, 'train.gen_batch_size': 256,
         'eval.num_samples': 10000}


def get_suite():
  suite = images.get_suite()
  suite.update(
      name='images_gpu',
      title='Leaderboard: Fashion-MNIST at GPU size (DiT-S/2)',
      report='docs/leaderboard_images_gpu.md',
      figures='docs/figures/leaderboard_images_gpu',
      calibration_seconds=30.0)
  suite['tasks'] = [{**suite['tasks'][0], 'config': TASK_CONFIG,
                     'overrides': SIZES, 'budget_seconds': 3600}]
  # DMD at the task's DiT sizes, not the CPU suite's small U-Net.
  suite['methods'] = images.methods(dmd_overrides={})
  return suite
