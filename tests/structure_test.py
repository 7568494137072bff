"""The shape of the code: no import cycles among the modules of drift_jax/
and experiments/, no config_lib -> methods/models dependency, a harness
(drift_jax/studies) that imports no method, short functions, no method
name tested outside its own module and the registry."""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / 'drift_jax'
# Where import cycles are looked for: the library and its entry points.
SCANNED = (PACKAGE, ROOT / 'experiments')
MAX_FUNCTION_LINES = 60
# A docstring that says why a function is longer lets it be.
EXCEPTION_NOTE = 'Longer than 60 lines on purpose'


def _module_name(path):
  parts = path.relative_to(ROOT).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path, modules):
  """Scanned modules `path` imports (at any depth, functions included)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      names = [f'{node.module}.{a.name}' for a in node.names]
    else:
      continue
    for name in names:
      # The longest prefix that is a module: `from a import b` imports the
      # module a.b when there is one, else the module a.
      while name and name not in modules:
        name = name.rpartition('.')[0]
      if name:
        found.add(name)
  return found


def import_graph():
  paths = {_module_name(p): p for folder in SCANNED
           for p in folder.rglob('*.py')}
  return {name: _imports(path, paths) - {name}
          for name, path in paths.items()}


def find_cycle(graph):
  """One import cycle as a list of modules, or None (depth-first search)."""
  state = {}

  def visit(node, stack):
    state[node] = 'open'
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 'open':
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt, stack + [nxt])
        if cycle:
          return cycle
    state[node] = 'done'
    return None

  for start in sorted(graph):
    if start not in state:
      cycle = visit(start, [start])
      if cycle:
        return cycle
  return None


def test_no_import_cycle_in_drift_jax_or_experiments():
  graph = import_graph()
  assert 'drift_jax.train.runner' in graph and graph['drift_jax.train.runner']
  assert 'drift_jax.studies.leaderboard' in graph['experiments.compare']
  assert find_cycle(graph) is None, find_cycle(graph)


@pytest.mark.parametrize('module, imported', [
    ('drift_jax.fields.kernels', 'drift_jax.train.runner'),
    # The harness's own layers: the store may not reach up to the harness.
    ('drift_jax.studies.store', 'drift_jax.studies.harness'),
    # An entry point imported back by the library it calls.
    ('drift_jax.studies.leaderboard', 'experiments.compare'),
    ('experiments.cli', 'experiments.compare'),
])
def test_the_cycle_finder_finds_an_injected_cycle(module, imported):
  graph = import_graph()
  assert module in graph and imported in graph
  assert find_cycle(graph) is None
  graph[module] = graph[module] | {imported}
  cycle = find_cycle(graph)
  assert cycle and cycle[0] == cycle[-1] and module in cycle


def _method_modules(deps):
  return [d for d in deps if d.startswith('drift_jax.methods.')]


def test_the_harness_imports_no_method():
  """The comparison's fairness may not depend on the harness knowing a
  method: it reads costs from `methods.get(name).prerequisites`. (The
  sweep's field plots draw the drifting field, a figure, not a budget.)"""
  graph = import_graph()
  harness = [m for m in graph if m.startswith('drift_jax.studies')
             and m != 'drift_jax.studies.sweep_plots']
  assert 'drift_jax.studies.harness' in harness
  offenders = {m: _method_modules(graph[m]) for m in harness
               if _method_modules(graph[m])}
  assert not offenders, offenders
  assert _method_modules(graph['drift_jax.studies.sweep_plots'])  # can fail


def test_config_lib_imports_no_method_and_no_model():
  deps = import_graph()['drift_jax.config.config_lib']
  assert not [d for d in deps
              if d.startswith(('drift_jax.methods', 'drift_jax.models'))]


def test_functions_are_short():
  long = []
  for path in PACKAGE.rglob('*.py'):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = node.end_lineno - node.lineno + 1
        doc = ast.get_docstring(node) or ''
        if lines > MAX_FUNCTION_LINES and EXCEPTION_NOTE not in doc:
          long.append(f'{path.name}:{node.name} ({lines} lines)')
  assert not long, long


REGISTRY = PACKAGE / 'methods' / '__init__.py'


def _method_names():
  return re.findall(r"^    '(\w+)': \w+,$", REGISTRY.read_text(), re.M)


def method_name_tests(sources: dict) -> list[str]:
  """'file:line: text' for each comparison of a value with a registered
  method's name in `sources` ({path: text}) outside that method's module
  (`x == 'dmd'`, `x in ('dmd', ...)`)."""
  comparison = re.compile(
      r"""(==|!=|\bin\b)\s*\(?\s*['"](""" + '|'.join(_method_names())
      + r""")['"]""")
  offenders = []
  for path, text in sources.items():
    for i, line in enumerate(text.splitlines(), 1):
      match = comparison.search(line)
      if match and pathlib.Path(path).stem != match.group(2):
        offenders.append(f'{pathlib.Path(path).name}:{i}: {line.strip()}')
  return offenders


def _sources():
  return {p: p.read_text() for folder in SCANNED for p in folder.rglob('*.py')
          if p != REGISTRY}


def test_method_names_are_tested_only_in_their_module_and_the_registry():
  assert {'drifting', 'dmd', 'diffusion'} <= set(_method_names())
  offenders = method_name_tests(_sources())
  assert not offenders, offenders


def test_a_method_name_tested_in_the_harness_is_caught():
  harness = PACKAGE / 'studies' / 'harness.py'
  sources = {harness: harness.read_text()
             + "\n  if config.method == 'dmd':\n    pass\n"}
  assert method_name_tests(sources) == [
      "harness.py:" + str(sources[harness].count('\n') - 1)
      + ": if config.method == 'dmd':"]


def test_the_unit_tier_refuses_the_training_loop_and_subprocesses():
  """tests/conftest.py keeps the quick tier quick: a unit-tier test that
  trains or starts a process fails with the tier to move it to."""
  import subprocess

  from drift_jax.train import runner
  with pytest.raises(AssertionError, match='INTEGRATION or SYSTEM'):
    runner.train_and_evaluate(None, '/nonexistent')
  with pytest.raises(AssertionError, match='unit tier'):
    subprocess.run(['true'], check=False)
