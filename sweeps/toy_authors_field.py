"""The default toy configs (5,000 steps, cosine decay, EMA) with the
authors' full field recipe instead of the demo's single tau: distances
normalised by their batch mean, temperatures (0.02, 0.05, 0.2), each
temperature's drift normalised (Deng App. A.6). Candidate defaults for the
quality bar (experiments/toy_quality.py).

  python -m experiments.ablate --sweep sweeps/toy_authors_field.py \
      --workdir runs/ablate/toy_authors_field
"""


def get_sweep():
  return {
      # Published (docs/reproduction.md) with per-seed evaluation sets.
      'eval_protocol': 'per_seed',
      'base': 'configs/toy2d.py',
      # The toy default's learning rate when these runs were published
      # (the leaderboard later raised it to 3e-3).
      'overrides': {'optim.lr': 1e-3,
                    'field.temperatures': (0.02, 0.05, 0.2),
                    'field.normalize_distances': True,
                    'field.normalize_drift': True},
      'grid': {'data.name': ['checkerboard', 'swiss_roll']},
      'seeds': 3,
  }
