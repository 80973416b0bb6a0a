"""The Bazel BUILD file stays in step with the source tree (pure Python: no Bazel needed).

Every .py file under rlcv_tf/ and launchers/ is in some target's srcs, every tests/test_*.py has a pytest_test,
every launcher has a py_binary, each target's deps cover the project modules its files import, and files made only
of grf/slow tests (which `bazel test //...` deselects) are the manual targets. Under Bazel this test sees the
source tree through its runfiles (a glob in BUILD), so adding a file re-runs it.
"""

import ast
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_PACKAGES = ('rlcv_tf', 'launchers')
SKIP_MARKERS = {'grf', 'slow'}  # what the non-manual Bazel targets deselect (tools/bazel/pytest.bzl)
RUNNER = 'tests/bazel_pytest_runner.py'


def _literal(node):
  try:
    return ast.literal_eval(node)
  except ValueError:
    return None


def parse_build():
  """Returns {target name: {'rule', 'srcs', 'deps', 'data', 'main', 'manual'}} for the top-level BUILD."""
  with open(os.path.join(ROOT, 'BUILD')) as f:
    tree = ast.parse(f.read(), 'BUILD')
  targets = {}
  for stmt in tree.body:
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name)):
      continue
    call = stmt.value
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    if 'name' not in kw:
      continue
    name = _literal(kw['name'])
    rule = call.func.id
    entry = {'rule': rule, 'main': None, 'manual': False}
    for attr in ('srcs', 'deps', 'data', 'tags'):
      value = _literal(kw[attr]) if attr in kw else []
      entry[attr] = list(value) if isinstance(value, (list, tuple)) else []
    if 'main' in kw:
      entry['main'] = _literal(kw['main'])
    if rule == 'pytest_test':
      entry['srcs'] = [RUNNER, f'tests/{name}.py']
      entry['data'] += [':pytest_config', ':testdata']
      entry['manual'] = _literal(kw['manual']) if 'manual' in kw else False
    assert name not in targets, f'BUILD: target {name} defined twice'
    targets[name] = entry
  return targets


TARGETS = parse_build()


def source_files():
  files = []
  for package in PROJECT_PACKAGES:
    files += glob.glob(os.path.join(ROOT, package, '**', '*.py'), recursive=True)
  return sorted(os.path.relpath(f, ROOT) for f in files if '__pycache__' not in f)


def all_test_files():
  return sorted(os.path.relpath(f, ROOT) for f in glob.glob(os.path.join(ROOT, 'tests', 'test_*.py')))


def label(dep):
  assert dep.startswith(':') or dep.startswith('//:'), f'BUILD: only same-package deps are expected, got {dep}'
  return dep.split(':', 1)[1]


def transitive_srcs(name, seen=None):
  seen = set() if seen is None else seen
  if name in seen or name not in TARGETS:
    return set()
  seen.add(name)
  target = TARGETS[name]
  out = set(target['srcs'])
  for dep in target['deps'] + target['data']:
    out |= transitive_srcs(label(dep), seen)
  return out


def module_file(module):
  """rlcv_tf.marl.config -> rlcv_tf/marl/config.py (or .../__init__.py); None if it is not a project file."""
  base = module.replace('.', '/')
  for candidate in (base + '.py', base + '/__init__.py'):
    if os.path.exists(os.path.join(ROOT, candidate)):
      return candidate
  return None


def project_imports(path):
  """Project files that `path` imports, starts with `python -m MODULE` or runs as `python -c SOURCE`."""
  with open(os.path.join(ROOT, path)) as f:
    tree = ast.parse(f.read(), path)
  modules = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      modules.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      modules.add(node.module)
      modules.update(f'{node.module}.{a.name}' for a in node.names)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
      text = node.value
      if re.fullmatch(r'(rlcv_tf|launchers)(\.\w+)+', text):  # [sys.executable, '-m', 'launchers.marl']
        modules.add(text)
      # Source run in a subprocess (python -c SCRIPT).
      for m in re.finditer(r'^\s*from\s+((?:rlcv_tf|launchers)[\w.]*)\s+import\s+([\w ,]+)', text, re.M):
        modules.add(m.group(1))
        modules.update(f'{m.group(1)}.{n.split()[0]}' for n in m.group(2).split(',') if n.strip())
      modules.update(re.findall(r'^\s*import\s+((?:rlcv_tf|launchers)[\w.]*)', text, re.M))
  files = set()
  for module in modules:
    if module.split('.')[0] not in PROJECT_PACKAGES:
      continue
    parts = module.split('.')
    for i in range(1, len(parts) + 1):  # importing a.b.c imports a/__init__, a/b/__init__ too
      f = module_file('.'.join(parts[:i]))
      if f:
        files.add(f)
  return files


def all_srcs():
  out = {}
  for name, target in TARGETS.items():
    if target['rule'] in ('py_library', 'py_binary'):
      for src in target['srcs']:
        out.setdefault(src, []).append(name)
  return out


def test_every_library_and_launcher_file_is_in_a_target():
  listed = all_srcs()
  missing = [f for f in source_files() if f not in listed]
  assert not missing, f'add these to a py_library/py_binary srcs in BUILD: {missing}'


def test_every_listed_file_exists():
  stale = [src for t in TARGETS.values() for src in t['srcs'] if not os.path.exists(os.path.join(ROOT, src))]
  assert not stale, f'BUILD lists files that do not exist: {stale}'


def test_this_test_sees_every_file_group_it_checks():
  """Under Bazel this test reads the tree through its runfiles: a filegroup of Python files (benchmark scripts,
  helpers) missing from its data makes test_every_listed_file_exists fail there and nowhere else."""
  with open(os.path.join(ROOT, 'BUILD')) as f:
    text = f.read()
  block = text[text.index('name = "test_build_file"'):]
  block = block[:block.index('\n)\n')]                   # its data is a list + glob: read the labels off the text
  data = set(re.findall(r'"(:[A-Za-z0-9_]+)"', block))
  groups = [n for n, t in TARGETS.items() if t['rule'] == 'filegroup' and any(s.endswith('.py') for s in t['srcs'])]
  missing = [n for n in groups if f':{n}' not in data]
  assert groups and data
  assert not missing, f'add these to test_build_file\'s data in BUILD: {missing}'


def test_each_library_file_is_in_exactly_one_target():
  twice = {src: names for src, names in all_srcs().items() if len(names) > 1}
  assert not twice, f'BUILD: files in more than one target: {twice}'


def test_every_test_file_has_a_pytest_target():
  named = {f'tests/{n}.py' for n, t in TARGETS.items() if t['rule'] == 'pytest_test'}
  missing = [f for f in all_test_files() if f not in named]
  assert not missing, f'add pytest_test(name = ...) to BUILD for: {missing}'
  stale = sorted(n for n in named if not os.path.exists(os.path.join(ROOT, n)))
  assert not stale, f'BUILD has pytest_test targets for missing files: {stale}'


def test_environment_adapters_are_with_the_registry():
  # registry.make_env imports adapters by name (importlib), which no deps check can see.
  owners = all_srcs()
  registry_targets = owners.get('rlcv_tf/envs/registry.py', [])
  apart = [f for f in source_files() if f.startswith('rlcv_tf/envs/') and owners.get(f, []) != registry_targets]
  assert not apart, f'BUILD: put these in the same py_library as rlcv_tf/envs/registry.py: {apart}'


def _is_entry_point(path):
  with open(os.path.join(ROOT, path)) as f:
    return re.search(r"^if __name__ == '__main__':", f.read(), re.M) is not None


def test_every_launcher_has_a_py_binary():
  # A launcher is a module under launchers/ that runs as `python -m launchers.NAME`; shared helpers
  # (launchers/common.py) are not.
  launchers = [f for f in source_files() if f.startswith('launchers/') and _is_entry_point(f)]
  assert 'launchers/marl.py' in launchers
  mains = {t['main']: n for n, t in TARGETS.items() if t['rule'] == 'py_binary'}
  for f in launchers:
    name = 'launcher_' + os.path.basename(f)[:-3]
    assert mains.get(f) == name, f'BUILD: add py_binary(name = "{name}", srcs = ["{f}"], main = "{f}", ...)'


@pytest.mark.parametrize('name', sorted(n for n, t in TARGETS.items()
                                        if t['rule'] in ('py_library', 'py_binary', 'pytest_test')))
def test_deps_cover_project_imports(name):
  available = transitive_srcs(name)
  needed = set()
  for src in TARGETS[name]['srcs']:
    if os.path.exists(os.path.join(ROOT, src)):
      needed |= project_imports(src)
  missing = sorted(needed - available)
  assert not missing, f'BUILD: //:{name} imports {missing} but its deps/data do not provide them'


def _marks(decorators):
  out = set()
  for d in decorators:
    node = d.func if isinstance(d, ast.Call) else d
    text = ast.unparse(node)
    m = re.fullmatch(r'pytest\.mark\.(\w+)', text)
    if m:
      out.add(m.group(1))
  return out


def collect_tests_and_marks(path):
  """[(test name, its marks including module- and class-level pytestmark)] for a test file."""
  with open(os.path.join(ROOT, path)) as f:
    tree = ast.parse(f.read(), path)

  def pytestmark(body):
    marks = set()
    for stmt in body:
      if isinstance(stmt, ast.Assign) and any(getattr(t, 'id', None) == 'pytestmark' for t in stmt.targets):
        values = stmt.value.elts if isinstance(stmt.value, (ast.List, ast.Tuple)) else [stmt.value]
        marks |= _marks(values)
    return marks

  module_marks = pytestmark(tree.body)
  out = []
  for stmt in tree.body:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name.startswith('test'):
      out.append((stmt.name, module_marks | _marks(stmt.decorator_list)))
    elif isinstance(stmt, ast.ClassDef) and stmt.name.startswith('Test'):
      class_marks = module_marks | _marks(stmt.decorator_list) | pytestmark(stmt.body)
      for item in stmt.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith('test'):
          out.append((f'{stmt.name}.{item.name}', class_marks | _marks(item.decorator_list)))
  return out


@pytest.mark.parametrize('path', all_test_files())
def test_manual_targets_are_exactly_the_grf_or_slow_only_files(path):
  name = os.path.basename(path)[:-3]
  if name not in TARGETS:
    pytest.skip('no target (reported by test_every_test_file_has_a_pytest_target)')
  tests = collect_tests_and_marks(path)
  fast = [t for t, marks in tests if not marks & SKIP_MARKERS]
  manual = TARGETS[name]['manual']
  if manual:
    assert not fast, (f'//:{name} is manual (left out of `bazel test //...`) but {path} has tests not marked '
                      f'grf/slow: {fast}; drop manual = True')
  else:
    assert fast, (f'every test in {path} is marked grf/slow, so `bazel test //...` would run none: give //:{name} '
                  'manual = True in BUILD')
