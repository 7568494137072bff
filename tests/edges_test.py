"""Grid extension at the edges (`studies.edges`): one rule for every
method's ordered axes, replayed from the stored tuning results."""

import copy
import os

import pytest

from drift_jax.studies import edges
from drift_jax.studies import harness
from drift_jax.studies import store
from drift_jax.studies import suite as suite_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHOD = {'name': 'm', 'search': {'optim.lr': (1e-3, 3e-3),
                                  'flag': (True, False)}}


def _results(points, scores):
  return [{'point': i, 'overrides': p, 'status': 'ok', 'split': 'validation',
           'final': {'eval/energy_distance_ratio': s}}
          for i, (p, s) in enumerate(zip(points, scores, strict=True))]


def _choose(results):
  return harness.choose(results, 'eval/energy_distance_ratio')


def test_only_numeric_axes_are_ordered_and_steps_follow_their_spacing():
  assert edges.ordered_axes(METHOD) == {'optim.lr': [1e-3, 3e-3]}
  assert edges.step_beyond([1e-3, 3e-3], 1) == pytest.approx(9e-3)
  assert edges.step_beyond([1e-3, 3e-3], -1) == pytest.approx(1e-3 / 3)
  assert edges.step_beyond([-1.2, -0.4], 1) == pytest.approx(0.4)
  # An integer axis (Sinkhorn iterations) extends by integers: 90, not
  # 90.0, which an int config field refuses.
  assert type(edges.step_beyond([10, 30], 1)) is int
  assert edges.step_beyond([10, 30], 1) == 90
  assert edges.step_beyond([10, 30], -1) == 3
  assert edges.step_beyond([1, 2], -1) == 1  # a count stays positive
  assert edges.step_beyond([2, 3], 1) == 4  # 4.5 rounds to the even 4
  assert edges.ordered_axes({'name': 'x', 'search': [{'a': 1}]}) == {}


def test_a_bounded_axis_extends_halfway_to_its_bound():
  share = (0.0, 1.0)
  # 0.5 * (0.5 / 0.25) = 1 would leave (0, 1): halfway to 1 instead.
  assert edges.step_beyond([0.25, 0.5], 1, share) == pytest.approx(0.75)
  assert edges.step_beyond([0.25, 0.5, 0.75], 1, share) == pytest.approx(
      0.875)
  # Inside the bounds the usual step stands.
  assert edges.step_beyond([0.25, 0.5], -1, share) == pytest.approx(0.125)
  with pytest.raises(ValueError, match=r"bounds\['dmd.teacher_share'\]"):
    suite_lib.check_suite({
        'name': 's', 'tasks': [], 'search_points': 2, 'final_seeds': (1,),
        'methods': [{'name': 'dmd', 'search': {'dmd.teacher_share': (
            0.5, 1.0)}, 'bounds': {'dmd.teacher_share': (0.0, 1.0)}}]})


def test_a_dry_run_validates_every_point_an_extension_can_reach():
  """core_v2's cells, each with every extension the rule can add, pass
  the start-up checks; without DMD's declared share bounds the dry run
  names the point (the step past 0.25, 0.5 to 1.0 stopped the suite
  half-way once)."""
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', 'core_v2.py'))
  dmd = next(m for m in suite['methods'] if m['name'] == 'dmd_trained')
  points = edges.reachable_points(suite, dmd)
  shares = sorted({p['dmd.teacher_share'] for p in points})
  assert shares == pytest.approx([0.0625, 0.125, 0.25, 0.5, 0.75, 0.875])
  for task, method in suite_lib.plan(suite):
    suite_lib.check_cell(task, method, 8,
                         edges.reachable_points(suite, method))
  unbounded = {k: v for k, v in dmd.items() if k != 'bounds'}
  with pytest.raises(ValueError, match=r"dmd_trained point \{.*"
                     r"'dmd.teacher_share': 1.0.*\}: "
                     '`dmd.teacher_share` must be in'):
    suite_lib.check_cell(suite['tasks'][0], unbounded, 8,
                         edges.reachable_points(suite, unbounded))


def test_an_edge_choice_extends_its_axis_at_most_twice():
  suite = {'extend_edges': 2}
  points = edges.cell_points(suite, METHOD, [], _choose)
  assert len(points) == 4  # nothing stored: the declared points
  # The highest lr wins: one point past it, at the winner's flag.
  tuned = _results(points, [5.0, 4.0, 3.0, 6.0])
  points = edges.cell_points(suite, METHOD, tuned, _choose)
  assert points[4] == {'optim.lr': pytest.approx(9e-3), 'flag': True}
  # It wins again: one more, then the limit (2 per direction) stops it.
  tuned = _results(points, [5.0, 4.0, 3.0, 6.0, 2.0])
  points = edges.cell_points(suite, METHOD, tuned, _choose)
  assert points[5]['optim.lr'] == pytest.approx(2.7e-2)
  tuned = _results(points, [5.0, 4.0, 3.0, 6.0, 2.0, 1.0])
  assert len(edges.cell_points(suite, METHOD, tuned, _choose)) == 6
  assert edges.at_edge(suite, METHOD, points, 5) == ['optim.lr']
  # An interior winner stops the extension and is not marked.
  tuned = _results(points[:5], [5.0, 4.0, 3.0, 6.0, 9.0])
  assert len(edges.cell_points(suite, METHOD, tuned, _choose)) == 5
  assert edges.at_edge(suite, METHOD, points[:5], 2) == []
  # Without `extend_edges`, the declared grid only.
  assert len(edges.cell_points({}, METHOD, tuned, _choose)) == 4


def test_the_harness_trains_the_extension_before_the_final_runs(tmp_path):
  """With the declared points stored and the edge winning, the dry run's
  next run is the extension, and no final run yet."""
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', 'tiny.py'))
  suite = copy.deepcopy(suite)
  suite.update(results=str(tmp_path / 'results'), extend_edges=1)
  task, method = suite['tasks'][0], suite['methods'][0]
  store.write_json(store.calibration_path(suite), {
      'runs': {f'{task["name"]}/{method["name"]}': {
          'seconds_per_step': 0.01}}})
  points = suite_lib.search_points(method)
  for result in _results(points, [5.0, 3.0]):
    result.update(phase='tune', seed=0)
    store.write_json(suite_lib.Run(task, method, 'tune', result['point'], 0)
                     .result_path(suite), result)
  todo = harness.run_cell(suite, task, method, dry_run=True)
  assert todo[0].startswith('ring/drifting/tune_p2: ')
  assert todo[-1] == 'ring/drifting/final (after tuning)'
  assert harness.tuned_points(suite, task, method)[2] == {
      'optim.lr': pytest.approx(9e-3)}


def test_two_tuning_seeds_are_averaged_and_named_apart(tmp_path):
  """`tuning_seeds`: a point's score is its mean over the seeds (a failed
  seed sinks it), an extension waits for every seed of every point, and
  the second seed's run has a name of its own."""
  metric = 'eval/energy_distance_ratio'
  results = [
      {'point': 0, 'seed': 0, 'status': 'ok', 'split': 'validation',
       'final': {metric: 1.0}},
      {'point': 0, 'seed': 5, 'status': 'ok', 'split': 'validation',
       'final': {metric: 9.0}},
      {'point': 1, 'seed': 0, 'status': 'ok', 'split': 'validation',
       'final': {metric: 4.0}},
      {'point': 1, 'seed': 5, 'status': 'ok', 'split': 'validation',
       'final': {metric: 4.5}}]
  assert harness.point_scores(results, metric) == {0: 5.0, 1: 4.25}
  assert harness.choose(results, metric) == 1
  failed = copy.deepcopy(results)
  failed[3]['status'] = 'failed'
  assert harness.choose(failed, metric) == 0
  suite = {'extend_edges': 1, 'tuning_seeds': (0, 5)}
  method = {'name': 'm', 'search': {'optim.lr': (1e-3, 3e-3)}}
  choose = lambda rs: harness.choose(rs, metric)
  assert len(edges.cell_points(suite, method, results[:3], choose)) == 2
  assert edges.cell_points(suite, method, results, choose)[2] == {
      'optim.lr': pytest.approx(9e-3)}
  task = {'name': 't'}
  first = suite_lib.Run(task, method, 'tune', 1, 0)
  second = suite_lib.Run(task, method, 'tune', 1, 5, first_tuning_seed=False)
  assert (first.name, second.name) == ('tune_p1', 'tune_p1_seed5')
