r"""How far each method's default Fashion-MNIST config gets in its length.

For each variant of `configs/fashion_mnist.py` this trains the default
config (its prerequisites included: the MAE, the teacher), then scores the
same generator at its initialisation with the same
prerequisites, and records the feature FD of both in the evaluation
classifier's features (one classifier, trained once, shared by every
variant; no method trains in it), the KID, and the wall time the trained
run cost with everything it trained first (`time/total_wall_seconds`).

  python -m experiments.image_quality --workdir runs/image_quality \
      --out results/images/quality.json

`--set key=value` (repeatable) trains the chosen variants with those
config keys changed, for trials of another length or recipe (give them
their own --out and --workdir):

  python -m experiments.image_quality --variants dmd \
      --set dmd.regression_weight=0.25 --set model.generator.noise_dim=784 \
      --workdir runs/iq_dmd_reg --out results/images/quality_dmd_reg.json

Resumable: finished variants are read back from `--out` and skipped, and
an interrupted run resumes in its workdir. Each variant's sample grid is
copied to `results/images/figures/<variant>.png`.
"""

from __future__ import annotations

import ast
import json
import os
import shutil

import ml_collections
from absl import app
from absl import flags

from drift_jax.data import datasets
from drift_jax.studies import suite as suite_lib
from drift_jax.train import prerequisites
from drift_jax.train import runner
from drift_jax.train import workdir as workdir_lib

VARIANTS = {
    'drifting-raw': 'method=drifting',
    'drifting-mae': 'method=drifting,encoder=mae',
    'drifting-teacher': 'method=drifting,encoder=teacher',
    'dmd': 'method=dmd',
    # DMD2's generator: the teacher's own network at sigma_max, initialised
    # from the teacher (Yin et al. 2024b), in place of the conv generator.
    'dmd2': 'method=dmd,generator=teacher',
    'diffusion': 'method=diffusion',
}
# Where a trained run keeps what its initialisation twin reuses.
PREREQUISITE_KEYS = {'features.encoder': 'encoder', 'dmd.teacher': 'teacher'}

_WORKDIR = flags.DEFINE_string('workdir', 'runs/image_quality',
                               'Folder of the runs (resumable).')
_OUT = flags.DEFINE_string('out', 'results/images/quality.json',
                           'The results file (read back on restart).')
_VARIANTS = flags.DEFINE_list('variants', list(VARIANTS),
                              f'Which of {list(VARIANTS)}.')
_SEED = flags.DEFINE_integer('seed', 0, 'The runs\' seed.')
_SMOKE = flags.DEFINE_bool('runlocal', False, 'Tiny sizes (a test).')
_SET = flags.DEFINE_multi_string(
    'set', [], 'key=value: a config key of every variant trained (dotted '
    'path; the value a Python literal, else a string). Repeatable.')


def _overrides() -> dict:
  """--set as {dotted key: value}."""
  out = {}
  for item in _SET.value:
    key, sep, text = item.partition('=')
    if not sep or not key:
      raise app.UsageError(f'--set: expected key=value, got {item!r}.')
    try:
      out[key] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      out[key] = text
  return out


def _config(arg, overrides=None):
  """The variant's finalized config (the method's own defaults, DMD's
  length among them, on every key `overrides` leaves alone)."""
  extra = ',runlocal' if _SMOKE.value else ''
  spec = f'configs/fashion_mnist.py:{arg}{extra}'
  if not overrides:
    return suite_lib.config_with_overrides(spec, {'seed': _SEED.value})
  try:
    return suite_lib.config_with_overrides(
        spec, {**overrides, 'seed': _SEED.value})
  except (KeyError, TypeError, ValueError) as error:
    # Blamed on --set only when it was given: a fault of the config file
    # itself keeps its own message (the branch above).
    raise app.UsageError(f'--set: {error}') from None


def _shared_classifier(workdir):
  """The evaluation classifier every variant scores with (no --set)."""
  student = _config('method=drifting')  # finalized
  request = prerequisites.eval_classifier(student, datasets.for_run(student))
  directory = os.path.join(workdir, 'classifier')
  runner.train_and_evaluate(request.run_config, directory)
  return directory


# The runner evaluates after a step, not before one: the initialisation is
# scored after one step at this learning rate, which moves no parameter by
# more than ~1e-12 (Adam's step is lr times a ratio of order one), so the
# generator is its initialisation to float32 precision. (One step at the
# config's own rate is not: DMD's first step took feature FD 27.6 -> 18.3.)
INITIALISATION_LR = 1e-12


def _at_initialisation(config, trained_dir):
  """The config whose one step leaves the generator at its initialisation,
  reusing the trained run's prerequisites."""
  c = ml_collections.ConfigDict(config.to_dict())  # finalized already
  k = c.train.steps_per_call
  c.train.update(steps=k, eval_every=k, log_every=k, checkpoint_every=k)
  c.optim.lr = INITIALISATION_LR
  for key, folder in PREREQUISITE_KEYS.items():
    section, name = key.split('.')
    if section in c and c[section].get(name) == 'train':
      c[section][name] = os.path.join(trained_dir, folder)
  return c


def _record(summary):
  keys = ('eval/feature_fd', 'eval/feature_fd_floor', 'eval/kid',
          'eval/kid_se', 'eval/kid_floor', 'eval/precision', 'eval/recall',
          'time/total_wall_seconds', 'time/wall_seconds',
          'time/teacher_wall_seconds', 'time/encoder_wall_seconds',
          'time/eval_seconds', 'time/first_call_seconds', 'step')
  return {k: float(summary[k]) for k in keys if k in summary}


def _run_variant(name, classifier_dir, figures):
  """Trains variant `name`, scores it at its initialisation, copies its
  sample grid; returns its results entry."""
  config = _config(VARIANTS[name], _overrides())
  config.eval.classifier = classifier_dir
  trained_dir = os.path.join(_WORKDIR.value, name)
  trained = runner.train_and_evaluate(config, trained_dir)
  initial = runner.train_and_evaluate(
      _at_initialisation(config, trained_dir),
      os.path.join(_WORKDIR.value, name + '-initialisation'))
  os.makedirs(figures, exist_ok=True)
  shutil.copyfile(os.path.join(trained_dir, 'samples.png'),
                  os.path.join(figures, f'{name}.png'))
  return {'config': VARIANTS[name], 'seed': _SEED.value,
          'set': _SET.value,
          'trained': _record(trained), 'initialisation': _record(initial),
          'fd_improvement': (initial['eval/feature_fd']
                             / trained['eval/feature_fd'])}


def main(argv):
  del argv
  results = {}
  if os.path.exists(_OUT.value):
    with open(_OUT.value) as f:
      results = json.load(f)
  for name in _VARIANTS.value:
    if name not in VARIANTS:
      raise app.UsageError(f'--variants: unknown {name!r}; known: '
                           f'{list(VARIANTS)}.')
  os.makedirs(_WORKDIR.value, exist_ok=True)
  classifier_dir = _shared_classifier(_WORKDIR.value)
  figures = os.path.join(os.path.dirname(_OUT.value) or '.', 'figures')
  for name in _VARIANTS.value:
    # An entry of the older format (scored after one step at the config's
    # own rate, 'one_step') is run again.
    if 'initialisation' in results.get(name, {}):
      print(f'{name}: done (in {_OUT.value})')
      continue
    results[name] = r = _run_variant(name, classifier_dir, figures)
    workdir_lib.write_atomic(_OUT.value,
                             json.dumps(results, indent=1, sort_keys=True))
    print(f'{name}: feature FD {r["initialisation"]["eval/feature_fd"]:.3f} '
          f'at initialisation -> {r["trained"]["eval/feature_fd"]:.3f} after '
          f'{int(r["trained"]["step"])} steps ({r["fd_improvement"]:.1f}x), '
          f'{r["trained"]["time/total_wall_seconds"]:.0f} s with its '
          'prerequisites')


if __name__ == '__main__':
  app.run(main)
