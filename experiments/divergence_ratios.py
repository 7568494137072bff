r"""The largest |loss| over its running median in every metrics.jsonl under
the given folders, computed by the divergence guard itself
(`guards.DivergenceGuard.ratio`, over the logged losses in order): the
measurement the default `train.divergence_factor` was chosen from
(`config_lib.DEFAULT_DIVERGENCE_FACTOR`), and the check that no finished
run would have tripped it.

  python -m experiments.divergence_ratios runs /tmp
"""

from __future__ import annotations

import os
import sys

from drift_jax.config import config_lib
from drift_jax.train import guards
from drift_jax.train import reporting


def largest_ratio(workdir: str) -> tuple[float, int | None]:
  """(largest ratio, its step) over the run's logged losses."""
  guard, worst = guards.DivergenceGuard(config_lib.DEFAULT_DIVERGENCE_FACTOR), (
      0.0, None)
  for record in reporting.read_metrics(workdir):
    if 'train/loss' not in record:
      continue
    ratio = guard.ratio(record['train/loss'])
    if ratio > worst[0]:
      worst = (ratio, record['step'])
    guard.record(record['train/loss'])
  return worst


def workdirs(folders) -> list[str]:
  found = []
  for folder in folders:
    for root, _, files in os.walk(folder):
      if reporting.METRICS_FILE in files:
        found.append(root)
  return sorted(found)


def main(argv) -> None:
  folders = argv[1:] or ['runs']
  for folder in folders:
    if not os.path.isdir(folder):
      sys.exit(f'{folder!r} is not a folder.')
  rows = sorted(((largest_ratio(w), w) for w in workdirs(folders)),
                reverse=True, key=lambda row: row[0][0])
  for (ratio, step), workdir in rows[:10]:
    print(f'{ratio:8.2f}x at step {step}  {workdir}')
  factor = config_lib.DEFAULT_DIVERGENCE_FACTOR
  tripped = sum(ratio > factor for (ratio, _), _ in rows)
  print(f'{len(rows)} runs; largest ratio '
        f'{rows[0][0][0] if rows else 0:.2f}x; {tripped} above the default '
        f'train.divergence_factor = {factor:g}.')


if __name__ == '__main__':
  main(sys.argv)
