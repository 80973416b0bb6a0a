"""pytest_test: one tests/test_*.py file as a Bazel py_test, run by tests/bazel_pytest_runner.py under pytest."""

RUNNER = "tests/bazel_pytest_runner.py"

# What `bazel test //...` deselects inside a file; `bash scripts/run_tests.sh` runs these under plain pytest.
DEFAULT_MARKERS = "not grf and not slow"

def pytest_test(name, deps = [], data = [], manual = False, markers = DEFAULT_MARKERS, tags = [], size = "medium", **kwargs):
    """A py_test named `name` that runs `tests/<name>.py` with pytest.

    Args:
      name: the test file's base name, e.g. "test_vtrace" for tests/test_vtrace.py.
      deps: the py_library targets the file imports.
      data: extra runfiles (e.g. a py_binary the test starts with `python -m launchers.NAME`).
      manual: tag "manual" (left out of `bazel test //...`; `bazel test //:NAME` still runs it, every test
        in the file, no marker filter). Use for files whose every test is marked grf or slow.
      markers: pytest -m expression for the non-manual target (default: skip tests marked grf or slow).
      tags: extra tags ("grf", "slow", ...).
      size: Bazel test size (medium = 300 s timeout, large = 900 s).
      **kwargs: passed to py_test.
    """
    src = "tests/%s.py" % name
    args = []
    if markers and not manual:
        # Bazel splits `args` like a Bourne shell: the quotes keep the expression one argument.
        args.append("'--markers=%s'" % markers)
    args.append("$(location %s)" % src)
    native.py_test(
        name = name,
        srcs = [RUNNER, src],
        main = RUNNER,
        args = args,
        deps = deps,
        data = data + ["//:pytest_config", "//:testdata"],
        python_version = "PY3",
        srcs_version = "PY3",
        size = size,
        tags = tags + (["manual"] if manual else []),
        **kwargs
    )
