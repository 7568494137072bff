"""The shape of the code: no import cycles among drift_jax modules, no
config_lib -> methods/models dependency, short functions, no method name
tested outside its own module and the registry."""

import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'drift_jax'
MAX_FUNCTION_LINES = 60
# A docstring that says why a function is longer lets it be.
EXCEPTION_NOTE = 'Longer than 60 lines on purpose'


def _module_name(path):
  parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path, modules):
  """drift_jax modules `path` imports (at any depth, functions included)."""
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
  paths = {_module_name(p): p for p in PACKAGE.rglob('*.py')}
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


def test_no_import_cycle_among_drift_jax_modules():
  graph = import_graph()
  assert 'drift_jax.runner' in graph and graph['drift_jax.runner']
  assert find_cycle(graph) is None, find_cycle(graph)


def test_the_cycle_finder_finds_a_cycle():
  graph = import_graph()
  graph['drift_jax.kernels'] = graph['drift_jax.kernels'] | {
      'drift_jax.runner'}
  cycle = find_cycle(graph)
  assert cycle and cycle[0] == cycle[-1]


def test_config_lib_imports_no_method_and_no_model():
  deps = import_graph()['drift_jax.config_lib']
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


def test_method_names_are_tested_only_in_their_module_and_the_registry():
  registry = PACKAGE / 'methods' / '__init__.py'
  names = re.findall(r"^    '(\w+)': \w+,$", registry.read_text(), re.M)
  assert {'drifting', 'dmd', 'diffusion'} <= set(names)
  alternatives = '|'.join(names)
  comparison = re.compile(
      r"""(==|!=|\bin\b)\s*\(?\s*['"](""" + alternatives + r""")['"]""")
  offenders = []
  for path in PACKAGE.rglob('*.py'):
    if path == registry:
      continue
    for i, line in enumerate(path.read_text().splitlines(), 1):
      match = comparison.search(line)
      if match and path.stem != match.group(2):
        offenders.append(f'{path.name}:{i}: {line.strip()}')
  assert not offenders, offenders
