"""The images suite: class-conditional Fashion-MNIST, drifting
in three feature spaces against DMD with a trained teacher and the
diffusion teacher as the multi-step reference, at equal compute on the
2-core CPU; docs/leaderboard_images.md is generated from it.

  python -m experiments.compare --suite suites/images.py --dry_run
  python -m experiments.compare --suite suites/images.py          # resumable
  python -m experiments.compare --suite suites/images.py --report_only

Every prerequisite is paid from its method's budget: the MAE encoder and
the diffusion teacher whose hidden states are features are charged to
drifting (`features.encoder_share`, a search axis), as the teacher is
charged to DMD (`dmd.teacher_share`). Each method tunes 2 points on a
validation split of the training images, then trains the chosen one with
3 seeds scored on the official test split, in an evaluation classifier
(three stages, its own seed) no method trains in.

Size: 5 methods x 5 runs x 400 charged s = 2.8 h of training, plus about
an hour of evaluation (1,000 samples, twice per run; the diffusion
reference's Heun sampler costs the most), calibration, the classifier and
the data row: about 4-5 h of the 2-core CPU.
"""

import os

from drift_jax.config import config_lib

TASK_CONFIG = 'configs/fashion_mnist.py:conditional'
# The evaluation classifier's features: FD (headline), KID, precision and
# recall, and the accuracy and per-class FD of the intended class.
METRICS = ('eval/kid', 'eval/precision', 'eval/recall',
           'eval/class_accuracy', 'eval/class_fd_mean')
ENCODER_SHARES = (0.25, 0.5)


# The task config's module, for DMD's recipe at CPU size.
fashion_mnist = config_lib.load_module(
    os.path.join(os.path.dirname(__file__), '..', 'configs',
                 'fashion_mnist.py'), '_fashion_mnist_config')

# DMD's own recipe at CPU size, as `configs/fashion_mnist.py:method=dmd`
# trains it (`DMD_CPU` there: a (16, 32, 64) U-Net teacher and D_fake, the
# DMD direction's sigma from the grid's upper 60 %), on batches of 80 (64
# there; here a multiple of the 10 classes, which a conditional batch holds
# equally, and of 8 devices).
# With the drifting config's (32, 64, 128) U-Net and batches of 200 (the
# suite's first DMD cells, kept as *.stale), the teacher and the fake
# updates left DMD 33 generator steps in 400 s.
DMD_CPU = {**fashion_mnist.DMD_CPU, 'train.gen_batch_size': 80,
           'dmd.teacher_batch_size': 80}


def methods(encoder_overrides=None, dmd_overrides=None):
  """The suite's five methods (`encoder_overrides`: extra overrides for
  the feature-space variants, e.g. the GPU suite's sizes; `dmd_overrides`:
  DMD's sizes, `DMD_CPU` unless given)."""
  extra = encoder_overrides or {}
  dmd_sizes = DMD_CPU if dmd_overrides is None else dmd_overrides
  return [
      {'name': 'drifting_raw', 'label': 'drifting, pixels',
       'overrides': {'method': 'drifting'},
       'search': {'optim.lr': (1e-3, 3e-3)}},
      {'name': 'drifting_mae', 'label': 'drifting, MAE features',
       'overrides': {'method': 'drifting', 'features.encoder': 'train',
                     'features.encoder_kind': 'mae',
                     'features.location_chunk': 49, **extra},
       'search': {'features.encoder_share': ENCODER_SHARES}},
      {'name': 'drifting_teacher', 'label': 'drifting, teacher features',
       'overrides': {'method': 'drifting', 'features.encoder': 'train',
                     'features.encoder_kind': 'teacher',
                     'features.location_chunk': 49, **extra},
       'search': {'features.encoder_share': ENCODER_SHARES}},
      {'name': 'dmd_trained', 'label': 'DMD, trained teacher',
       # Constant rates, as DMD2 trains: under the config's cosine decay
       # D_fake's rate fell to 0 with the generator's and stopped tracking
       # it (README, "Real images").
       'overrides': {'method': 'dmd', 'dmd.teacher': 'train',
                     'optim.schedule': 'constant', **dmd_sizes},
       'search': {'dmd.teacher_share': (0.5, 0.75)}},
      {'name': 'diffusion', 'label': 'diffusion teacher (multi-step)',
       'reference': True, 'overrides': {'method': 'diffusion'},
       'search': {'diffusion.p_mean': (-1.2, -0.4)}},
  ]


def get_suite():
  return {
      'name': 'images',
      'default_method': 'drifting_raw',
      'title': 'Leaderboard: Fashion-MNIST, drifting and DMD at equal '
               'compute',
      'search_points': 2,
      'final_seeds': (1, 2, 3),
      'tuning_seed': 0,
      'floor_draws': 3,
      'data_draws': 3,
      'evals_per_run': 2,
      'calibration_seconds': 10.0,
      'report': 'docs/leaderboard_images.md',
      'figures': 'docs/figures/leaderboard_images',
      'tasks': [
          {'name': 'fashion_mnist', 'config': TASK_CONFIG,
           'budget_seconds': 400, 'eval_seed': 1701,
           'metric': 'eval/feature_fd', 'metrics': METRICS,
           'needs': ('images',)},
      ],
      'methods': methods(),
  }
