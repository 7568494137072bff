"""Studies: the comparison harness, its leaderboard and the sweep grid.

The layers inside, from the bottom (an arrow never points up):
  suite (a suite file's declaration and checks, the plan of runs)
  < store (the small JSON results a study commits, read and written)
  < budget (calibrated seconds per step, a budget split into steps over a
    method's charged prerequisites)
  < harness (tuning on validation, final seeds, data rows, the cross-task
    default) and leaderboard (docs/leaderboard.md from the store alone);
  sweep and sweep_plots (`experiments.ablate`'s grids) share the store.
`experiments/compare.py` and `experiments/ablate.py` hold only their flags
and `main`.
"""
