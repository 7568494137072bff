"""Executes the Colab notebooks in smoke mode; any cell error fails."""

import os
import pathlib

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted(
    (pathlib.Path(__file__).parent.parent / 'notebooks').glob('*.ipynb'))


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode(path, monkeypatch):
  monkeypatch.setenv('DRIFT_JAX_SMOKE', '1')
  monkeypatch.setenv('MPLBACKEND', 'Agg')
  # The kernel must import this checkout even without an editable install.
  root = str(path.parent.parent)
  monkeypatch.setenv('PYTHONPATH',
                     os.pathsep.join([root, os.environ.get('PYTHONPATH', '')]))
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                                   resources={'metadata': {'path': root}})
  client.execute()  # raises CellExecutionError on the first failing cell


def test_there_is_a_notebook():
  assert any(p.name.startswith('01_') for p in NOTEBOOKS)
