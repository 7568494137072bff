"""A leaderboard cell tells a metric no run recorded ('—') from a failed
run, and conditional runs keep their class accuracy."""

from drift_jax import evaluators
from drift_jax.studies import leaderboard


def _run(final, status='ok'):
  return {'final': final, 'status': status}


def test_a_metric_no_run_recorded_is_a_dash_not_a_failure():
  runs = [_run({'eval/feature_fd': 2.0}), _run({'eval/feature_fd': 4.0})]
  assert leaderboard.metric_cell(runs, 'eval/class_accuracy') == '—'
  assert leaderboard.metric_cell(runs, 'eval/feature_fd').startswith('3 [')
  failed = [_run({}, 'failed'), _run({'eval/feature_fd': 2.0})]
  assert 'failed' in leaderboard.metric_cell(failed, 'eval/feature_fd')
  all_failed = [_run({}, 'failed'), _run({}, 'failed')]
  assert leaderboard.metric_cell(all_failed, 'eval/feature_fd') == (
      'failed (2)')


def test_class_accuracy_is_kept_in_stored_results():
  assert 'eval/class_accuracy' in evaluators.kept_metrics()


def test_a_prerequisites_part_is_shown_in_charged_seconds():
  result = {'prerequisites': {'encoder': {'steps': 213,
                                          'seconds_per_step': 0.469}}}
  assert leaderboard._charged_part(result, 'encoder', 213) == ' (99.9 s)'  # noqa: SLF001
  assert leaderboard._charged_part({'teacher_steps': 5}, 'teacher', 5) == ''  # noqa: SLF001
