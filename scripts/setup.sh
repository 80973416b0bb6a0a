#!/usr/bin/env bash
# One-shot set-up of rlcv_tf on Debian 12 / Python 3.11 (root or sudo).
# Installs system packages, a virtual environment in .venv, the pinned Python stack, Google Research Football
# (built from source once, then reused from a cached wheel), Ray (the `ray` extra: --backend=ray) and Bazel. Safe to
# re-run: finished steps are skipped. Run it on every machine of a Ray cluster, at the same commit.
#
#   bash scripts/setup.sh            # everything
#   RLCV_SKIP_GFOOTBALL=1 bash scripts/setup.sh   # skip the football engine (tests that need it then skip)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RLCV_VENV:-$ROOT/.venv}
CACHE=${RLCV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rlcv_tf}
PY=${PYTHON:-python3.11}
GFOOTBALL_VERSION=2.10.2
mkdir -p "$CACHE/wheels"

log() { printf '[setup] %s\n' "$*"; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

# ---------------------------------------------------------------- system packages
APT_PKGS=(git cmake build-essential libgl1-mesa-dev libsdl2-dev libsdl2-image-dev libsdl2-ttf-dev
          libsdl2-gfx-dev libboost-all-dev libdirectfb-dev libst-dev mesa-utils xvfb bazel-bootstrap)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt: system packages present"
fi

# ---------------------------------------------------------------- python environment
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
STAMP="$VENV/.rlcv_requirements"
REQ_HASH=$(cat setup.cfg | sha1sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$REQ_HASH" ]; then
  log "pip: installing the pinned stack (first time: several minutes, ~2.5 GB)"
  "${PIP[@]}" install -U pip wheel psutil six
  # dev: the test tools; ray: Ray core for --backend=ray (README "Many machines (Ray)"), tested by CI too.
  "${PIP[@]}" install -e ".[dev,ray]"
  # TFP imports tf_keras; --no-deps keeps it from pulling the full `tensorflow` wheel next to tensorflow-cpu.
  "${PIP[@]}" install --no-deps "tf-keras==2.21.0"
  echo "$REQ_HASH" > "$STAMP"
else
  log "pip: stack up to date"
fi

# ---------------------------------------------------------------- Google Research Football
if [ "${RLCV_SKIP_GFOOTBALL:-0}" != 1 ]; then
  if "$VENV/bin/python" -c "import gfootball.env" >/dev/null 2>&1; then
    log "gfootball: installed"
  else
    wheel=$(ls "$CACHE"/wheels/gfootball-${GFOOTBALL_VERSION}-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$wheel" ]; then
      log "gfootball: building ${GFOOTBALL_VERSION} from source (about 5 minutes, cached afterwards in $CACHE/wheels)"
      # The engine's build script runs `python3 -c 'import psutil'`: the venv must be first on PATH and the
      # build must not be isolated from it.
      PATH="$VENV/bin:$PATH" "${PIP[@]}" wheel --no-deps --no-build-isolation \
        "gfootball==${GFOOTBALL_VERSION}" -w "$CACHE/wheels"
      wheel=$(ls "$CACHE"/wheels/gfootball-${GFOOTBALL_VERSION}-*.whl | head -n1)
    else
      log "gfootball: using cached wheel $wheel"
    fi
    # --no-deps: gfootball asks for pygame, which would clash with gymnasium's pygame-ce.
    "${PIP[@]}" install --no-deps "$wheel"
  fi
fi

# ---------------------------------------------------------------- Bazel toolchain pointing at the venv
"$VENV/bin/python" tools/bazel/configure.py --python="$VENV/bin/python"

# ---------------------------------------------------------------- Chapter 2 engines (ale-py + 7 ROMs, Box2D)
# One `error:` line per missing piece, saying how to get it, and exit 2 (set -e stops here).
"$VENV/bin/python" scripts/check_engines.py
log "done. Activate with: source $VENV/bin/activate"
