"""The README's headline is the one the leaderboard generates from the
stored verdicts (`verdicts.headline` over `results/core/`)."""

import os
import re

from drift_jax.studies import leaderboard
from drift_jax.studies import suite as suite_lib
from drift_jax.studies import verdicts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quoted(text):
  match = re.search(r'<!-- headline -->\n(.*?)\n<!-- /headline -->', text,
                    re.S)
  assert match, 'no <!-- headline --> block'
  return match.group(1).split('\n')


def test_readme_headline_is_the_generated_one():
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', 'core.py'))
  suite['results'] = os.path.join(ROOT, suite_lib.results_dir(suite))
  generated = verdicts.headline(suite, leaderboard.load(suite))
  assert generated, 'the stored results give no headline'
  with open(os.path.join(ROOT, 'README.md')) as f:
    readme = _quoted(f.read())
  assert readme == generated
  with open(os.path.join(ROOT, 'docs', 'leaderboard.md')) as f:
    board = f.read()
  assert '\n'.join(generated) in board


def test_headline_reports_what_the_data_allow():
  suite = suite_lib.load_suite(os.path.join(ROOT, 'suites', 'core.py'))
  suite['results'] = os.path.join(ROOT, suite_lib.results_dir(suite))
  text = ' '.join(verdicts.headline(suite, leaderboard.load(suite)))
  assert 'Holm-corrected' in text and 'not beaten' not in text
  assert re.search(r'up to [\d.]+× worse', text)
  assert re.search(r'detects ratios of [\d.]+–[\d.]+× at 80 % power', text)
