"""Grids that find each method's optimum: one rule for every method.

When the validation choice sits at the edge of an ordered axis of the
method's own search (a numeric axis of a `search` dict: learning rates,
shares, p_mean; not tuples such as temperature sets, nor booleans), the
axis is extended by one point in that direction (the chosen point with
that axis moved one step further: the edge times the ratio of the edge
to its neighbour when every value is positive, the edge plus their
difference otherwise; halfway to a bound the method declares for the
axis, `bounds`, where that step would reach it), and the choice is made
again; at most `suite['extend_edges']` points per axis and direction.
The points of a cell are therefore its declared ones followed by the
extensions, in the order they were added, which the stored tuning
results replay exactly.
A cell still chosen at an edge after its extensions is marked.
"""

from __future__ import annotations

import numbers

from drift_jax.studies import suite as suite_lib


def ordered_axes(method) -> dict[str, list]:
  """{axis: its declared values, sorted} of the numeric axes."""
  search = method['search']
  if not isinstance(search, dict):
    return {}
  out = {}
  for axis, values in search.items():
    values = list(values)
    if len(values) >= 2 and all(isinstance(v, numbers.Real)
                                and not isinstance(v, bool)
                                for v in values):
      out[axis] = sorted(values)
  return out


def step_beyond(values, direction: int, bounds=None) -> float:
  """The next value past the low (-1) or high (+1) end of `values`.

  An axis of integers (iteration counts, sizes) stays integer: the step
  is rounded, and moved one further when rounding lands on the edge, so
  an int config field never receives a float such as 90.0. An axis with
  open `bounds` (low, high), such as a share in (0, 1), takes the
  midpoint between the edge and the bound where the step would reach or
  pass it (a teacher share 0.25, 0.5 extends to 0.75, not 1)."""
  values = sorted(values)
  edge, neighbour = ((values[-1], values[-2]) if direction > 0
                     else (values[0], values[1]))
  positive = all(v > 0 for v in values)
  if positive:
    beyond = edge * (edge / neighbour)
  else:
    beyond = edge + (edge - neighbour)
  if bounds is not None and not bounds[0] < beyond < bounds[1]:
    beyond = (edge + bounds[direction > 0]) / 2
  if not all(isinstance(v, numbers.Integral) for v in values):
    return beyond
  beyond = round(beyond)
  if beyond == edge:
    beyond = edge + direction
  if positive:
    beyond = max(beyond, 1)  # a positive axis (a count) stays positive
  return beyond


def reachable_points(suite, method) -> list[dict]:
  """Every point the rule could ever train: the product of each ordered
  axis's declared values with its `extend_edges` steps past either end
  (an extension keeps the chosen point's other axes, which may be
  extensions too), the other axes as declared. A dry run validates them
  all before any training (`harness.run_cell`)."""
  axes = ordered_axes(method)
  if not axes:
    return suite_lib.search_points(method)
  search = dict(method['search'])
  for axis, declared in axes.items():
    reach = list(declared)
    for direction in (-1, 1):
      seen = list(declared)
      for _ in range(suite.get('extend_edges', 0)):
        seen.append(step_beyond(seen, direction, _bounds(method, axis)))
      reach += seen[len(declared):]
    search[axis] = reach
  return suite_lib.search_points({'search': search})


def _bounds(method, axis):
  return method.get('bounds', {}).get(axis)


def _edge_moves(method, points, chosen, limit):
  """[(axis, direction, new value)] for the chosen point's edges that may
  still extend."""
  moves = []
  declared = ordered_axes(method)
  for axis, base in declared.items():
    seen = sorted({p[axis] for p in points})
    value = points[chosen][axis]
    for direction, edge in ((-1, seen[0]), (1, seen[-1])):
      beyond = [v for v in seen if (v < base[0] if direction < 0
                                    else v > base[-1])]
      if value == edge and len(beyond) < limit:
        moves.append((axis, direction, step_beyond(
            seen, direction, _bounds(method, axis))))
  return moves


def cell_points(suite, method, tuned: list[dict], choose) -> list[dict]:
  """The cell's search points: declared, then each extension the stored
  tuning results `tuned` call for (`choose(results) -> index`). Stops at
  the first point that has no result yet (it is the next to train)."""
  points = suite_lib.search_points(method)
  limit = suite.get('extend_edges', 0)
  if not limit:
    return points
  per_point = len(suite_lib.tuning_seeds(suite))
  counts = {}
  for r in tuned:
    counts[r['point']] = counts.get(r['point'], 0) + 1
  while all(counts.get(i, 0) >= per_point for i in range(len(points))):
    chosen = choose([r for r in tuned if r['point'] < len(points)])
    added = False
    for axis, _, value in _edge_moves(method, points, chosen, limit):
      point = {**points[chosen], axis: value}
      if point not in points:
        points.append(point)
        added = True
    if not added:
      break
  return points


def at_edge(suite, method, points, chosen) -> list[str]:
  """The ordered axes whose edge the chosen point still sits on."""
  if not ordered_axes(method):
    return []
  out = []
  for axis in ordered_axes(method):
    seen = sorted({p[axis] for p in points})
    if points[chosen][axis] in (seen[0], seen[-1]):
      out.append(axis)
  return out
