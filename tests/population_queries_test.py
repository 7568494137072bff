"""experiments/population_queries.py: the per-query split, the summaries'
intervals and the resumable cells."""

import os

import numpy as np
import pytest

from experiments import population_queries as pq


def test_a_query_row_holds_the_split_it_reports():
  """The covariance residual is the scale-mismatch term plus C_p - C_q
  (so its norm is at most the sum of theirs), and with equal scales on
  both sides at tau -> infinity every part is small next to V."""
  x = np.random.default_rng(0).normal(size=4)
  row = dict(zip(pq.COLUMNS, pq.query_row(x, pq.SETUPS['wider'], 1.0),
                 strict=True))
  assert row['norm'] > 0
  assert row['residual_cov'] <= row['mismatch'] + row['covariance'] + 1e-12
  assert -1 <= row['cosine'] <= 1 and -1 <= row['cosine_cov'] <= 1
  far = dict(zip(pq.COLUMNS, pq.query_row(x, pq.SETUPS['shifted'], 100.0),
                 strict=True))
  assert far['residual'] < 0.05 and far['cosine'] > 0.99


def test_pooled_weighs_queries_by_their_field():
  ratio, norm = np.array([0.1, 0.5]), np.array([3.0, 1.0])
  expected = np.sqrt((0.3**2 + 0.5**2) / (9 + 1))
  assert pq.pooled(ratio, norm) == pytest.approx(expected, rel=1e-12)
  rng = np.random.default_rng(1)
  ratio, norm = rng.uniform(0, 1, 200), rng.uniform(0.5, 2, 200)
  value, lo, hi = pq.pooled_interval(ratio, norm)
  assert lo < value < hi


def test_the_rate_recovers_a_known_power_law():
  """Medians falling exactly as d^-1/2 (each d's queries a lognormal
  cloud around it): the slope is -1/2 and its interval holds it; the
  interval narrows with more queries."""
  rng = np.random.default_rng(2)
  widths = []
  for n in (50, 800):
    cells = {d: {'x': d**-0.5 * np.exp(rng.normal(0, 0.3, n))}
             for d in (16, 32, 128, 512)}
    slope, lo, hi = pq.rate(cells, 'x')
    assert lo < -0.5 < hi and abs(slope + 0.5) < 0.1
    widths.append(hi - lo)
  assert widths[1] < widths[0] / 2


def test_cells_are_written_once_and_read_back(tmp_path, monkeypatch):
  """(8 queries: the median's distribution-free 95 % interval needs 6.)"""
  monkeypatch.setattr(pq, 'DIMS', (2,))
  monkeypatch.setattr(pq, 'TEMPERATURES', (1.0,))
  out = str(tmp_path)
  pq.run_cells(out, ['shifted'], 8, processes=1)
  path = pq.cell_path(out, 'shifted', 2, 1.0)
  stamp = os.stat(path).st_mtime_ns
  pq.run_cells(out, ['shifted'], 8, processes=1)  # nothing to do
  assert os.stat(path).st_mtime_ns == stamp
  cell = pq.load_cell(out, 'shifted', 2, 1.0)
  assert set(cell) == set(pq.COLUMNS) and len(cell['norm']) == 8
  summary = pq.summarise(out, ['shifted'])['shifted']
  assert summary['cells'][0]['queries'] == 8
  median, lo, hi = summary['cells'][0]['residual']['median']
  assert lo <= median <= hi
