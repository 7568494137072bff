"""Optimal assignment between two equal-size point sets (for exact W2).

With n points on each side and uniform weights, an optimal transport plan of
W2 is a permutation (Birkhoff: the vertices of the transport polytope are
permutation matrices), so W2^2 = min_sigma (1/n) sum_i |x_i - y_sigma(i)|^2,
a linear assignment problem. It is solved here exactly, in pure JAX, by the
Hungarian algorithm in its shortest-augmenting-path form with dual
potentials (Kuhn 1955; Munkres 1957; the O(n^3) variant of Jonker and
Volgenant 1987 without their initialisation heuristics): each of the n rows
is inserted by a Dijkstra-like search over reduced costs, vectorised over
columns, so the work is O(n^3) and the loops are `lax.while_loop`s.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.jit
def _hungarian(cost):
  """Column of each row in a min-cost perfect matching of cost [n, n].

  Arrays are 1-based with a dummy column 0, as in the textbook algorithm:
  col_row[j] is the row matched to column j (0: none); u, v are the row and
  column potentials, with u_i + v_j <= cost_ij and equality on the matching.
  """
  n = cost.shape[0]
  a = jnp.zeros((n + 1, n + 1), cost.dtype).at[1:, 1:].set(cost)
  inf = jnp.array(jnp.inf, cost.dtype)
  cols = jnp.arange(n + 1)

  def insert_row(i, carry):
    u, v, col_row = carry
    col_row = col_row.at[0].set(i)
    min_reduced = jnp.full((n + 1,), inf)
    came_from = jnp.zeros((n + 1,), jnp.int32)
    used = jnp.zeros((n + 1,), bool)

    def grow(state):
      # Add the column nearest (in reduced cost) to the alternating tree.
      u, v, min_reduced, came_from, used, j0, _ = state
      used = used.at[j0].set(True)
      i0 = col_row[j0]
      reduced = a[i0] - u[i0] - v
      closer = (~used) & (reduced < min_reduced)
      min_reduced = jnp.where(closer, reduced, min_reduced)
      came_from = jnp.where(closer, j0, came_from)
      candidates = jnp.where(used, inf, min_reduced)
      j1 = jnp.argmin(candidates)
      delta = candidates[j1]
      u = u.at[jnp.where(used, col_row, n + 1)].add(delta, mode='drop')
      v = jnp.where(used, v - delta, v)
      min_reduced = jnp.where(used, min_reduced, min_reduced - delta)
      return u, v, min_reduced, came_from, used, j1, col_row[j1]

    def tree_open(state):
      return state[-1] != 0  # stop at a free column

    state = grow((u, v, min_reduced, came_from, used, jnp.int32(0),
                  jnp.int32(1)))
    u, v, _, came_from, _, j0, _ = jax.lax.while_loop(tree_open, grow, state)

    def augment(state):
      col_row, j0 = state
      j1 = came_from[j0]
      return col_row.at[j0].set(col_row[j1]), j1

    col_row, _ = jax.lax.while_loop(lambda s: s[1] != 0, augment,
                                    (col_row, j0))
    return u, v, col_row

  zeros = jnp.zeros((n + 1,), cost.dtype)
  _, _, col_row = jax.lax.fori_loop(
      1, n + 1, insert_row, (zeros, zeros, jnp.zeros((n + 1,), jnp.int32)))
  row_col = jnp.zeros((n + 1,), jnp.int32).at[col_row[1:]].set(cols[1:])
  return row_col[1:] - 1


def linear_assignment(cost):
  """Permutation sigma minimising sum_i cost[i, sigma(i)] (exact).

  Args:
    cost: [n, n] finite costs.

  Returns:
    [n] int32: sigma(i), the column assigned to row i.
  """
  cost = jnp.asarray(cost)
  if cost.ndim != 2 or cost.shape[0] != cost.shape[1] or cost.shape[0] < 1:
    raise ValueError(f'`cost` must be a non-empty square [n, n] matrix, got '
                     f'{cost.shape}.')
  if not jnp.issubdtype(cost.dtype, jnp.floating):
    cost = cost.astype(jnp.float32)
  return _hungarian(cost)
