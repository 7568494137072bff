"""The public maths API under bad input: every function of
`fuzz_cases.FUNCTIONS` x every kind of bad input either answers with finite
values or refuses with a ValueError naming one of its arguments; inside the
documented range (`drift_jax.theory.validation`) every answer is finite.

The tally: `python -m tests.fuzz_cases`.
"""

import collections

import pytest

from tests import fuzz_cases

_BY_FUNCTION = collections.defaultdict(list)
for _row in fuzz_cases.cases():
  _BY_FUNCTION[_row[0].name].append(_row)
_IN_RANGE = collections.defaultdict(list)
for _row in fuzz_cases.cases(in_range=True):
  _IN_RANGE[_row[0].name].append(_row)


@pytest.mark.parametrize('name', sorted(_BY_FUNCTION))
def test_bad_input_is_answered_or_refused_by_name(name):
  # One test per function (not per case): the table's 249 cases in 17.
  failures = []
  for fn, case, x, y, hyper in _BY_FUNCTION[name]:
    result, message = fuzz_cases.outcome(fn, x, y, hyper)
    if result not in ('finite', 'named'):
      failures.append(f'{case}: {result} ({message})')
  assert not failures, failures


@pytest.mark.parametrize('name', sorted(_IN_RANGE))
def test_input_in_the_documented_range_gives_finite_values(name):
  failures = []
  for fn, case, x, y, hyper in _IN_RANGE[name]:
    result, message = fuzz_cases.outcome(fn, x, y, hyper)
    # The Frechet distance's bound on features is narrower (1e8: its
    # cross term is a product of three covariances), named when refused.
    allowed = (('finite', 'named') if name == 'frechet_distance'
               else ('finite',))
    if result not in allowed:
      failures.append(f'{case}: {result} ({message})')
  assert not failures, failures


def test_the_classification_can_fail():
  # The classifier of outcomes is what every assertion above rests on:
  # a silent NaN, an unnamed error and a crash are each caught.
  fn = fuzz_cases.Function('f', lambda x, y: x, ('x',), {})
  nan = fuzz_cases.POINT_CASES[0][1]
  assert fuzz_cases.outcome(fn, nan, None, {})[0] == 'silent'

  def unnamed(x, y):
    raise ValueError('something is wrong')

  def crash(x, y):
    return x.shape

  def named(x, y):
    raise ValueError('`x` is wrong, got (2,)')

  for call, want in ((unnamed, 'unnamed'), (crash, 'crash'),
                     (named, 'named')):
    fn = fuzz_cases.Function('f', call, ('x',), {})
    assert fuzz_cases.outcome(fn, [1.0], None, {})[0] == want
