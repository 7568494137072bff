"""What produced a stored result, and whether the suite still asks for it.

Every result the harness stores carries its provenance: the SHA-256 of the
resolved config it trained with (flattened, keys sorted), the task's
budget, the calibration its steps came from, and the evaluation protocol
(split, seed, floor draws, samples, the metric points are chosen by). A
result is *current* when the suite, resolved again, gives the same
provenance for its entry; otherwise it is *stale* (the grid, the budget,
the evaluation seed or the metric changed since), and the harness trains
it again, keeping the old file as `<name>.stale` (`--reuse_stale` keeps
using it, with a warning). The leaderboard reports current results only.

Results stored before provenance was recorded are checked on what they
hold of their overrides, steps and split (so a changed grid or budget
still shows; a changed evaluation seed or metric does not).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from drift_jax import methods
from drift_jax.studies import store
from drift_jax.train import workdir as workdir_lib

# Keys that change neither what a run computes nor how it is scored (the
# evaluation classifier is the task's, trained once; its folder is a path
# of this machine).
UNSCORED_KEYS = frozenset({
    'train.progress', 'train.divergence_factor', 'train.allow_config_change',
    'train.allow_unfinished', 'train.wandb_project', 'train.wandb_mode',
    'train.keep_checkpoints', 'eval.plot', 'eval.classifier',
    'mesh.num_devices', 'mesh.fsdp'})
STALE_SUFFIX = '.stale'


def resolved_config(config) -> dict:
  """The flattened config a result records, without `UNSCORED_KEYS`."""
  flat = workdir_lib.flatten(store.jsonable(config.to_dict()))
  return {k: v for k, v in sorted(flat.items()) if k not in UNSCORED_KEYS}


def of_run(task, config, budget) -> dict:
  """The provenance of a run trained with `config` under `budget`."""
  text = json.dumps(resolved_config(config), sort_keys=True)
  return store.jsonable({
      'config_sha256': hashlib.sha256(text.encode()).hexdigest(),
      'budget_seconds': task['budget_seconds'],
      'calibration': {'seconds_per_step': budget.seconds_per_step,
                      **{f'{name}_seconds_per_step': p.seconds_per_step
                         for name, p in budget.prerequisites.items()},
                      **{f'{name}_setup_seconds': seconds
                         for name, seconds in budget.setups.items()}},
      'eval': {'split': config.eval.split, 'seed': config.eval.seed,
               'floor_draws': config.eval.floor_draws,
               'num_samples': config.eval.num_samples,
               'metric': task['metric']}})


def differences(stored: dict, expected: dict, run, budget,
                config=None) -> list[str]:
  """What differs between a stored result and the suite's entry for it
  ([] when it is current). With the entry's `config`, a config hash that
  differs only by keys one side lacks (added to or removed from the schema
  since, so at their defaults: the rule a resumed workdir follows,
  `workdir.config_changes`) is not a change."""
  if 'provenance' in stored:
    old = stored['provenance']
    changed = [key for key in expected if old.get(key) != expected[key]]
    if ('config_sha256' in changed and config is not None
        and same_config(stored.get('config'), resolved_config(config))):
      changed.remove('config_sha256')
    return changed
  # A result from before provenance: what it recorded (a key it lacks
  # cannot be checked).
  legacy = {'overrides': store.jsonable(run.overrides),
            'steps': budget.steps, 'split': expected['eval']['split']}
  return [key for key, new in legacy.items()
          if key in stored and stored[key] != new]


def changed_keys(stored: dict, current: dict) -> list[str]:
  """The keys both a stored resolved config (flat) and `current` have on
  which they differ, old keys renamed since mapped to their new names."""
  renamed = methods.renamed_keys()
  old = {renamed.get(k, k): v for k, v in stored.items()}
  new = json.loads(json.dumps(current))
  return sorted(k for k in set(old) & set(new) if old[k] != new[k])


def same_config(stored: dict | None, current: dict) -> bool:
  """Whether a stored resolved config (flat) equals `current` on every key
  both have (`changed_keys`)."""
  return isinstance(stored, dict) and not changed_keys(stored, current)


def data_row_protocol(suite, task) -> dict:
  """What a task's data row depends on: its draws and the evaluation."""
  return {'eval_seed': task['eval_seed'],
          'data_draws': suite.get('data_draws', 10),
          'floor_draws': suite.get('floor_draws', 10)}


def data_row_differences(suite, task, stored: dict) -> list[str]:
  """What differs between a stored data row and the suite's ([] when it
  is current; a row from before protocols is checked on its draws)."""
  expected = data_row_protocol(suite, task)
  if 'protocol' not in stored:
    return ([] if len(stored['draws']) == expected['data_draws']
            else ['data_draws'])
  return [k for k in expected if stored['protocol'].get(k) != expected[k]]


def _move(old: str) -> str:
  target, n = old + STALE_SUFFIX, 0
  while os.path.exists(target):
    n += 1
    target = f'{old}{STALE_SUFFIX}{n}'
  os.replace(old, target)
  return target


def set_aside_file(path: str, changed: list[str]) -> None:
  """Moves a stale stored file to `<name>.stale`, with one line."""
  target = _move(path)
  print(f'stale: {path} no longer matches the suite ({", ".join(changed)} '
        f'changed); kept as {target}, deriving it again (--reuse_stale '
        'keeps stale results).', file=sys.stderr, flush=True)


def set_aside(suite, run, changed: list[str]) -> None:
  """Moves a stale result to `<name>.stale` and its workdir to
  `<workdir>.stale` (its checkpoints belong to the old config), with one
  line naming what changed."""
  workdir = run.workdir(suite)
  if os.path.exists(workdir):
    _move(workdir)
  set_aside_file(run.result_path(suite), changed)
