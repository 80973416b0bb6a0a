"""No rlcv_tf module imports itself back through others (pure Python: nothing is imported, the sources are parsed).

Every `import rlcv_tf...` and `from rlcv_tf... import ...` counts, at module level and inside functions alike: a
function-level import that dodges a circle at load time still ties the two modules into one. The graph is over
rlcv_tf's own modules; `from rlcv_tf.marl import training` is an edge to rlcv_tf/marl/training.py, `from
rlcv_tf.marl.config import X` (X not a module) one to rlcv_tf/marl/config.py.
"""

import ast
import glob
import os
from typing import Dict, List, Optional, Set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'rlcv_tf'


def module_name(path: str) -> str:
  """rlcv_tf/marl/config.py -> rlcv_tf.marl.config; rlcv_tf/marl/__init__.py -> rlcv_tf.marl."""
  parts = os.path.relpath(path, ROOT)[:-len('.py')].split(os.sep)
  if parts[-1] == '__init__':
    parts = parts[:-1]
  return '.'.join(parts)


def package_modules() -> Dict[str, str]:
  """{module name: file} for every .py file under rlcv_tf/."""
  files = glob.glob(os.path.join(ROOT, PACKAGE, '**', '*.py'), recursive=True)
  return {module_name(f): f for f in sorted(files) if '__pycache__' not in f}


def imported_modules(path: str, name: str, modules: Set[str]) -> Set[str]:
  """The rlcv_tf modules that the file `path` (module `name`) imports anywhere in its body."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  is_package = os.path.basename(path) == '__init__.py'
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:   # relative: resolved against the importing module's package
        anchor = name.split('.') if is_package else name.split('.')[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = '.'.join(anchor + ([base] if base else []))
      for a in node.names:   # `from pkg import mod` imports the module pkg.mod, `from mod import X` the module mod
        out.add(f'{base}.{a.name}' if f'{base}.{a.name}' in modules else base)
  return {m for m in out if m in modules and m != name}


def import_graph() -> Dict[str, Set[str]]:
  modules = package_modules()
  return {name: imported_modules(path, name, set(modules)) for name, path in modules.items()}


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
  """One import circle as [a, b, ..., a], or None when the graph is acyclic (iterative depth-first search)."""
  done: Set[str] = set()
  for start in sorted(graph):
    if start in done:
      continue
    path, on_path = [start], {start}
    stack = [iter(sorted(graph[start]))]
    while stack:
      nxt = next(stack[-1], None)
      if nxt is None:
        stack.pop()
        done.add(path[-1])
        on_path.discard(path.pop())
      elif nxt in on_path:
        return path[path.index(nxt):] + [nxt]
      elif nxt not in done:
        path.append(nxt)
        on_path.add(nxt)
        stack.append(iter(sorted(graph.get(nxt, ()))))
  return None


def test_cycle_finder_finds_a_circle_and_passes_a_tree():
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == ['a', 'b', 'c', 'a']
  assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None
  assert find_cycle({'a': {'a'}}) == ['a', 'a']


def test_the_graph_sees_function_level_and_module_level_imports():
  graph = import_graph()
  marl = f'{PACKAGE}.marl'   # (spelled out, test_build_file would read the names as `python -m` targets)
  assert f'{marl}.config' in graph[f'{marl}.learner']           # module level
  assert f'{marl}.export' in graph[f'{marl}.pretraining']       # inside a function


def test_no_import_cycles_in_rlcv_tf():
  cycle = find_cycle(import_graph())
  assert cycle is None, ('import circle among rlcv_tf modules: ' + ' -> '.join(cycle or [])
                         + '; move what both sides need into a module that neither imports back')


# The house's layers (README "Layout"): shared packages first; each chapter package sits on them and on nothing else.
SHARED_PACKAGES = ('core', 'envs', 'datasets', 'runtime')
# What each shared package may import besides itself (core is the bottom; runtime's actors carry no TensorFlow).
SHARED_MAY_IMPORT = {'core': (), 'datasets': ('core',), 'envs': ('core',), 'runtime': ('core', 'envs')}


def _package_of(module: str) -> str:
  parts = module.split('.')
  return parts[1] if len(parts) > 1 else ''


def layering_violations(graph: Dict[str, Set[str]]) -> List[str]:
  """'a -> b' for every import that crosses the layers: a chapter package importing another chapter package, or a
  shared package importing a chapter package (or a shared package above it)."""
  out = []
  for module, imports in sorted(graph.items()):
    own = _package_of(module)
    if not own:
      continue
    allowed = ({own} | set(SHARED_MAY_IMPORT[own])) if own in SHARED_PACKAGES else ({own} | set(SHARED_PACKAGES))
    for target in sorted(imports):
      if _package_of(target) and _package_of(target) not in allowed:
        out.append(f'{module} -> {target}')
  return out


def test_layering_finder_flags_a_chapter_importing_a_chapter():
  p = PACKAGE   # (spelled out, test_build_file would read the names as imports)
  graph = {f'{p}.acvae.x': {f'{p}.crvae.y', f'{p}.core.z'}, f'{p}.core.z': {f'{p}.marl.w'},
           f'{p}.crvae.y': {f'{p}.datasets.d'}, f'{p}.datasets.d': {f'{p}.core.z'}}
  assert layering_violations(graph) == [f'{p}.acvae.x -> {p}.crvae.y', f'{p}.core.z -> {p}.marl.w']


def test_chapter_packages_never_import_each_other():
  violations = layering_violations(import_graph())
  assert not violations, ('imports across the package layers (chapter packages use core / envs / datasets / runtime '
                          'only; move what two chapters share into rlcv_tf/core):\n  ' + '\n  '.join(violations))
