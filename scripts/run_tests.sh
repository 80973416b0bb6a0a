#!/usr/bin/env bash
# The test command (README "Two commands", and what .ci/run runs):
#
#   bash scripts/run_tests.sh
#
# 1. set-up: `bash scripts/setup.sh` (idempotent; seconds when everything is installed; it also regenerates the
#    Bazel Python toolchain for this checkout's .venv),
# 2. Bazel: `bazel test //...`: every test not marked grf or slow (see BUILD),
# 3. pytest: `.venv/bin/python -m pytest tests -q -m "grf or slow" -n 2 --dist loadfile`: the rest (real football
#    engine, long runs), so the two phases run every test once, on two pytest-xdist workers (each file on one worker:
#    most of these runs keep one core busy, so two workers take about half the time of one on the 2-core CI
#    machine). With RLCV_SKIP_BAZEL=1 pytest runs every test.
#
# Phases 2 and 3 both run even if one fails; the exit status is non-zero if set-up, Bazel or pytest failed.
# Extra arguments go to pytest (e.g. `RLCV_SKIP_BAZEL=1 bash scripts/run_tests.sh -x -k vtrace`).
#
# Environment: RLCV_SKIP_SETUP=1 skips phase 1; RLCV_SKIP_BAZEL=1 skips phase 2; RLCV_TEST_TIMEOUT (seconds,
# default 1200) fails any single pytest test that hangs, with its traceback, instead of the whole CI job timing
# out; RLCV_PYTEST_WORKERS (default 2; 0 runs pytest in one process, e.g. to debug a test with -s or pdb);
# RLCV_KEEP_BAZEL_SERVER=1 leaves Bazel's server running afterwards (by default it is shut down to give
# its memory back to the pytest phase).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RLCV_VENV:-$ROOT/.venv}
START=$SECONDS

phase() { printf '\n======================================== %s\n' "$*"; }
elapsed() { local s=$(( SECONDS - $1 )); printf '%dm%02ds' $(( s / 60 )) $(( s % 60 )); }

# ---------------------------------------------------------------- 1. set-up
if [ "${RLCV_SKIP_SETUP:-0}" != 1 ]; then
  phase "[1/3] set-up: bash scripts/setup.sh"
  t=$SECONDS
  if ! bash scripts/setup.sh; then
    echo "run_tests: set-up failed (see above); no tests were run" >&2
    exit 1
  fi
  echo "[1/3] set-up done in $(elapsed $t)"
else
  phase "[1/3] set-up: skipped (RLCV_SKIP_SETUP=1)"
fi

# ---------------------------------------------------------------- 2. Bazel
bazel_status=0
bazel_result="skipped (RLCV_SKIP_BAZEL=1)"
if [ "${RLCV_SKIP_BAZEL:-0}" != 1 ]; then
  phase "[2/3] Bazel: bazel test //... --test_output=errors"
  t=$SECONDS
  if ! command -v bazel >/dev/null 2>&1; then
    echo "run_tests: bazel is not installed (scripts/setup.sh installs Debian's bazel-bootstrap)" >&2
    bazel_status=1
  elif [ ! -f tools/bazel/python_toolchain/BUILD ]; then
    echo "run_tests: the Bazel Python toolchain is not generated; run: bash scripts/setup.sh" >&2
    bazel_status=1
  else
    # Any non-zero exit fails: 1 build error, 3 a test failed, 4 no test targets at all.
    bazel test //... --test_output=errors
    bazel_status=$?
    [ "${RLCV_KEEP_BAZEL_SERVER:-0}" = 1 ] || bazel shutdown >/dev/null 2>&1 || true
  fi
  if [ $bazel_status = 0 ]; then bazel_result="passed"; else bazel_result="FAILED (exit $bazel_status)"; fi
  echo "[2/3] Bazel ${bazel_result} in $(elapsed $t)"
fi

# ---------------------------------------------------------------- 3. pytest
markers=()
[ "${RLCV_SKIP_BAZEL:-0}" = 1 ] || markers=(-m "grf or slow")
workers=()
[ "${RLCV_PYTEST_WORKERS:-2}" = 0 ] || workers=(-n "${RLCV_PYTEST_WORKERS:-2}" --dist loadfile)
phase "[3/3] pytest: $VENV/bin/python -m pytest tests -q ${markers[*]} ${workers[*]}"
t=$SECONDS
"$VENV/bin/python" -m pytest tests -q --durations=25 --timeout="${RLCV_TEST_TIMEOUT:-1200}" "${workers[@]}" \
  "${markers[@]}" "$@"
pytest_status=$?
case $pytest_status in
  0) pytest_result="passed" ;;
  5) pytest_result="FAILED: no tests were collected (exit 5)" ;;
  *) pytest_result="FAILED (exit $pytest_status)" ;;
esac
echo "[3/3] pytest ${pytest_result} in $(elapsed $t)"

# ---------------------------------------------------------------- summary
phase "summary ($(elapsed $START) in all)"
echo "Bazel:  ${bazel_result}"
echo "pytest: ${pytest_result}"
if [ $bazel_status != 0 ] || [ $pytest_status != 0 ]; then
  exit 1
fi
