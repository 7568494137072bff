r"""Compares two runs' metrics.jsonl, ignoring wall-clock fields.

  python -m experiments.same_metrics --a runs/before/metrics.jsonl \
      --b runs/after/metrics.jsonl

Prints one line per file pair: identical (bit for bit, as JSON numbers) or
the first record and key that differ; exits 1 when any pair differs. A
refactor must leave every non-wall-clock number unchanged.
"""

import json
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def _define_flags():
  """Defined only when run as a script: importing this module (tests,
  notebooks, other entry points) adds no flags."""
  flags.DEFINE_multi_string('a', None, 'metrics.jsonl files (reference).')
  flags.DEFINE_multi_string('b', None, 'metrics.jsonl files, same order.')
  flags.mark_flags_as_required(['a', 'b'])

# Seconds measured by the clock: the only fields a refactor may change.
WALL_CLOCK = ('time/wall_seconds', 'time/total_wall_seconds',
              'time/teacher_wall_seconds', 'time/encoder_wall_seconds',
              # their names before they moved from budget/ to time/
              'budget/total_seconds', 'budget/teacher_seconds',
              'budget/encoder_seconds')


def read(path):
  with open(path) as f:
    return [{k: v for k, v in json.loads(line).items()
             if k not in WALL_CLOCK} for line in f if line.strip()]


def first_difference(a, b):
  """None if the record lists are identical, else a description."""
  if len(a) != len(b):
    return f'{len(a)} vs {len(b)} records'
  for i, (ra, rb) in enumerate(zip(a, b, strict=True)):
    if list(ra) != list(rb):
      return f'record {i}: keys {sorted(set(ra) ^ set(rb))} differ'
    for key in ra:
      if ra[key] != rb[key]:
        return (f'record {i} (step {ra.get("step")}): {key} '
                f'{ra[key]!r} vs {rb[key]!r}')
  return None


def main(argv):
  del argv
  if len(FLAGS.a) != len(FLAGS.b):
    raise app.UsageError('Give as many --b files as --a files.')
  differ = 0
  for pa, pb in zip(FLAGS.a, FLAGS.b, strict=True):
    a, b = read(pa), read(pb)
    diff = first_difference(a, b)
    differ += diff is not None
    values = sum(len(r) for r in a)
    print(f'{pb}: ' + (f'DIFFERS, {diff}' if diff else
                       f'identical ({len(a)} records, {values} values)'))
  sys.exit(1 if differ else 0)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
