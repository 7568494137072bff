r"""The runner's quality bar on 2-D toys (issue 3), as a script.

  python -m experiments.toy_quality [--workdir runs/quality] [--only NAME ...]

Energy distance between 5,000 generated and 5,000 held-out samples, as a
ratio to the data-vs-data floor at the same size (`eval/energy_distance_ratio`
of the final evaluation). Targets: the drifting paper's demo recipe run
through this runner against the authors' notebook (1.34x checkerboard,
4.9x swiss roll); the default drifting configs <= 2x on both; DMD on the
8-Gaussian ring <= 2x with the oracle and with a trained teacher. Finished
runs are reused (the runner resumes), so the script can be re-run to
reprint the table; delete the workdir to measure again.
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs import gmm  # noqa: E402
from configs import toy2d  # noqa: E402
from drift_jax import runner  # noqa: E402

RUNS = {  # name: (config, target ratio, what the target is)
    'recipe_checkerboard': (toy2d.get_config('recipe'), 1.34,
                            'authors notebook'),
    'recipe_swiss_roll': (toy2d.get_config('recipe,dataset=swiss_roll'), 4.9,
                          'authors notebook'),
    'default_checkerboard': (toy2d.get_config(''), 2.0, 'issue bar'),
    'default_swiss_roll': (toy2d.get_config('dataset=swiss_roll'), 2.0,
                           'issue bar'),
    'dmd_oracle_gmm': (gmm.get_config('method=dmd'), 2.0, 'issue bar'),
    'dmd_trained_teacher_gmm': (gmm.get_config('method=dmd,teacher=train'),
                                2.0, 'issue bar'),
}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', default='runs/quality')
  parser.add_argument('--only', nargs='*', choices=sorted(RUNS))
  args = parser.parse_args()
  rows = []
  for name in args.only or RUNS:
    config, target, source = RUNS[name]
    config.train.progress = False
    s = runner.train_and_evaluate(config, os.path.join(args.workdir, name))
    rows.append({
        'run': name, 'ratio': s['eval/energy_distance_ratio'],
        'target': target, 'source': source, 'steps': s['step'],
        'wall_s': s['budget/wall_seconds'],
        'teacher_steps': s['budget/teacher_steps'],
        'teacher_s': s['budget/teacher_seconds'],
        'energy_distance': s['eval/energy_distance'],
        'floor': s['eval/energy_distance_floor']})
    print(json.dumps(rows[-1]), flush=True)
  print('\n| run | ED / floor | target | met | steps | wall (s) | '
        'teacher steps | teacher (s) |\n|---|---|---|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['run']} | {r['ratio']:.2f} | <= {r['target']} "
          f"({r['source']}) | {'yes' if r['ratio'] <= r['target'] else 'NO'}"
          f" | {r['steps']} | {r['wall_s']:.0f} | {r['teacher_steps']} | "
          f"{r['teacher_s']:.0f} |")
  with open(os.path.join(args.workdir, 'quality.json'), 'w') as f:
    json.dump(rows, f, indent=2)


if __name__ == '__main__':
  main()
