"""The core comparison suite under the powered protocol: six tasks x every
method at equal compute, each method tuned on its own axes with grids that
extend at their edges, 10 test seeds for the finalists, and a budget axis.
It replaces `suites/core.py` (whose results stay in results/core, beside
these) once complete.

  python -m experiments.compare --suite suites/core_v2.py          # resumable
  python -m experiments.compare --suite suites/core_v2.py --dry_run
  python -m experiments.compare --suite suites/core_v2.py --report_only

Protocol (what changed from suites/core.py):
- Tuning: 4 declared points per method, each scored as the mean of 2
  validation seeds; an ordered axis chosen at an edge extends by one point
  in that direction, at most twice (`studies.edges`), for every method.
- Each method's own axes; none inherits another's values:
    drifting and the family fields: learning rate x a factor on the
      authors' temperature set (`field.temperature_factor`; the Gaussian
      kernel of none of them);
    Sinkhorn: its temperature factor x its iterations (the learning rate
      at the recipe's 3e-3);
    diffusion: learning rate x EDM's p_mean;
    DMD with a trained teacher: the teacher's share of the budget x the
      fake denoiser's updates per generator update (the two time-scale
      ratio), with its regression loss on (its teacher-ODE pairs charged
      to its budget, `methods.setups`);
    DMD with the oracle teacher: learning rate x the fake denoiser's
      learning rate, regression loss on;
    kde-DMD: learning rate x noised (DMD proper) or clean x (the bridge,
      reproduction §6); it has no teacher network, so no regression pairs.
- Finalists (drifting's default, the best three rivals on validation, DMD
  with a trained teacher, the diffusion reference) get 10 test seeds fixed
  in advance; the others 3.
- A budget axis on three tasks (a 2-D toy, a mixture, the digits): the
  finalists at 1/10 and 3 times the task's budget (2, 20, 60 s on the
  toys; 4, 40, 120 s on the digits: 30x end to end), each with its
  schedule fitted to its own length.
- Two evaluations a run (the curve's midpoint and the end).
- On the digits every generator takes 64-d noise (32 in suites/core.py),
  so that DMD's regression pairs can be made there too.

Size: over the issue's 8 CPU-hours, which the protocol itself cannot meet
on the 2-core CPU. At the 31-33 s of wall a 20-s run takes (suites/core.py
and suites/laplace_vs_score.py measured), the 10-seed finalists alone are
~414 runs (3.8 h); 2-seed validation of 51 cells with edge extensions
~350 runs (~3 h); the budget axis ~1.7 h: about 8.5 h, run resumably over
several sessions (results committed as they finish).
"""

import os

from drift_jax.config import config_lib

# The same six tasks as suites/core.py, read from it (as images_gpu reads
# images), so that the rerun cannot drift from the suite it replaces.
core = config_lib.load_module(
    os.path.join(os.path.dirname(__file__), 'core.py'), '_core_suite')

LRS = core.LRS
TEMPERATURE_FACTORS = (1.0, 2.5)
# Every drifting-family field with the authors' normalised recipe (their
# three temperatures, scaled by the tuned factor).
FIELD = {'field.kernel': 'laplace', 'field.normalize_distances': True,
         'field.normalize_drift': True, 'field.mask_self': True,
         'field.temperatures': (0.02, 0.05, 0.2)}
FIELD_SEARCH = {'optim.lr': LRS,
                'field.temperature_factor': TEMPERATURE_FACTORS}
REGRESSION = {'dmd.regression_weight': 0.25}


def _field(name, normalization, label, search=None):
  return {'name': name, 'label': label,
          'overrides': {'method': 'drifting', **FIELD,
                        'field.normalization': normalization},
          'search': search or FIELD_SEARCH}


# The budget axis: 1/10 and 3 times each of these tasks' budget (30x).
BUDGETS = {'checkerboard': (2, 60), 'ring8': (2, 60), 'digits': (4, 120)}


# DMD's regression pairs start the teacher's ODE from the generator's
# noise, which must hold a data point: the digits' generators take 64-d
# noise here (32 in suites/core.py), for every method alike.
NOISE_DIMS = {'digits': 64}


def _task(task):
  name = task['name']
  if name in BUDGETS:
    task = {**task, 'budgets': BUDGETS[name]}
  if name in NOISE_DIMS:
    task = {**task, 'overrides': {**task.get('overrides', {}),
                                  'model.generator.noise_dim':
                                  NOISE_DIMS[name]}}
  return task


def _tasks():
  return [_task(task) for task in core.get_suite()['tasks']]


def _methods():
  return [
      _field('drifting', 'bidirectional',
             'drifting (default field, tuned per task)'),
      _field('kernel_gradient', 'kernel_gradient', 'kernel gradient'),
      _field('sharp_companion', 'sharp_companion', 'sharp companion'),
      _field('mmd', 'mmd', 'MMD gradient'),
      _field('sinkhorn', 'sinkhorn', 'Sinkhorn',
             {'field.temperature_factor': TEMPERATURE_FACTORS,
              'field.sinkhorn_iterations': (10, 30)}),
      # Multi-step (18 Heun steps, 35 network passes per sample): a
      # reference at the same training cost, not a one-step rival.
      {'name': 'diffusion', 'label': 'diffusion teacher (multi-step)',
       'reference': True, 'overrides': {'method': 'diffusion'},
       'search': {'optim.lr': LRS, 'diffusion.p_mean': (-1.2, -0.4)}},
      {'name': 'dmd_trained', 'label': 'DMD, trained teacher',
       'overrides': {'method': 'dmd', 'dmd.teacher': 'train',
                     'dmd.denoisers': 'network', **REGRESSION},
       'search': {'dmd.teacher_share': (0.25, 0.5),
                  'dmd.fake_steps_per_gen': (2, 5)},
       # A share lies in (0, 1): the upward extension of 0.25, 0.5 is 0.75.
       'bounds': {'dmd.teacher_share': (0.0, 1.0)}},
      {'name': 'dmd_oracle', 'label': 'DMD, oracle teacher',
       'upper_bound': True, 'needs': ('mixture',),
       'overrides': {'method': 'dmd', 'dmd.teacher': 'oracle',
                     'dmd.denoisers': 'network', **REGRESSION},
       'search': {'optim.lr': LRS, 'dmd.fake_lr': (1e-3, 9e-3)}},
      {'name': 'kde_dmd', 'label': 'kde-DMD',
       'overrides': {'method': 'dmd', 'dmd.denoisers': 'kde',
                     'dmd.regression_weight': 0.0},
       'search': {'optim.lr': LRS, 'dmd.noised': (True, False)}},
  ]


def get_suite():
  return {
      'name': 'core_v2',
      'default_method': 'drifting',
      'title': 'Leaderboard: drifting, its family and DMD at equal compute '
               '(powered protocol)',
      'search_points': 4,
      'tuning_seeds': (0, 100),
      'extend_edges': 2,
      'final_seeds': (1, 2, 3),
      'finalists': {'seeds': tuple(range(1, 11)),
                    'always': ('drifting', 'dmd_trained', 'diffusion'),
                    'best_rivals': 3},
      'floor_draws': 10,
      'data_draws': 10,
      'evals_per_run': 2,
      'calibration_seconds': 2.0,
      'results': 'results/core_v2',
      'workdir': 'runs/core_v2',
      'report': 'docs/leaderboard_v2.md',
      'previous': 'suites/core.py',
      'figures': 'docs/figures/leaderboard_v2',
      'tasks': _tasks(),
      'methods': _methods(),
  }
