"""Executes the Colab notebooks in smoke mode as a Colab user runs them:
from a directory outside the repository, with no PYTHONPATH, so that only
the notebook's own set-up cell makes the code importable."""

import pathlib
import re
import tomllib

import nbclient
import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / 'notebooks').glob('*.ipynb'))


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode(path, monkeypatch, tmp_path):
  monkeypatch.setenv('DRIFT_JAX_SMOKE', '1')
  monkeypatch.setenv('MPLBACKEND', 'Agg')
  monkeypatch.delenv('PYTHONPATH', raising=False)
  # The set-up cell uses this checkout instead of cloning (no network).
  monkeypatch.setenv('DRIFT_JAX_REPO', str(ROOT))
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(
      nb, timeout=600, kernel_name='python3',
      resources={'metadata': {'path': str(tmp_path)}})
  client.execute()  # raises CellExecutionError on the first failing cell


def test_notebooks_set_the_repository_address_in_one_place():
  with open(ROOT / 'pyproject.toml', 'rb') as f:
    url = tomllib.load(f)['project']['urls']['Repository']
  for path in NOTEBOOKS:
    setup = ''.join(nbformat.read(path, as_version=4).cells[1].source)
    assert re.findall(r"'(https://[^']+)'", setup) == [url], path.name
    assert 'sys.path.insert(0, CHECKOUT)' in setup


def test_there_is_a_notebook():
  assert any(p.name.startswith('01_') for p in NOTEBOOKS)


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_text_has_no_control_characters(path):
  """A LaTeX escape written into a Python string without an r prefix
  becomes a control character (\\tau a tab, \\bar a backspace) that a
  renderer drops: none in any cell but newlines."""
  for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
    bad = re.findall(r'[\x00-\x09\x0b-\x1f]', cell.source)
    assert not bad, f'{path.name} cell {i}: {bad}'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_smoke_mode_is_named_as_the_code_reads_it(path):
  text = ''.join(c.source for c in nbformat.read(path, as_version=4).cells
                 if c.cell_type == 'markdown')
  assert not re.search(r'(?<!DRIFT_JAX_)SMOKE=', text), path.name
