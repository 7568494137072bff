"""Optimal assignment between two equal-size point sets (for exact W2).

With n points on each side and uniform weights, an optimal transport plan of
W2 is a permutation (Birkhoff: the vertices of the transport polytope are
permutation matrices), so W2^2 = min_sigma (1/n) sum_i |x_i - y_sigma(i)|^2,
a linear assignment problem, solved exactly by scipy's
`linear_sum_assignment` (the shortest-augmenting-path Hungarian algorithm
of Jonker and Volgenant 1987, as Crouse 2016 describes it; O(n^3)) on the
host: W2 is an evaluation metric, never part of a traced step.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize


def linear_assignment(cost):
  """Permutation sigma minimising sum_i cost[i, sigma(i)] (exact).

  Args:
    cost: [n, n] finite costs.

  Returns:
    [n] int32: sigma(i), the column assigned to row i.
  """
  cost = np.asarray(cost)
  if cost.ndim != 2 or cost.shape[0] != cost.shape[1] or cost.shape[0] < 1:
    raise ValueError(f'`cost` must be a non-empty square [n, n] matrix, got '
                     f'{cost.shape}.')
  if not np.all(np.isfinite(cost)):
    raise ValueError('`cost` must be finite.')
  rows, cols = optimize.linear_sum_assignment(cost)
  assert np.array_equal(rows, np.arange(len(rows)))  # a square problem
  return cols.astype(np.int32)
