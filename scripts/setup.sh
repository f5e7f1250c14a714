#!/usr/bin/env bash
# Set up everything the engine, the add-on's headless checks and the tests need:
# a virtual environment in .venv with the pinned packages, the glTF validator, and the
# ICT-FaceKit face model imported into the asset cache ($GANFIT_HOME, default
# ~/.cache/ganfit). Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${GANFIT_BOOTSTRAP_PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$candidate; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python 3.11 is needed (bpy 5.0.1 wheels exist for 3.11 only)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages (a few minutes the first time)" >&2
  # (this machine's pip config lists local indexes that warn for every package they lack)
  quiet() { "$@" 2> >(grep -v '^WARNING: Location' >&2); }
  quiet .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  quiet .venv/bin/python -m pip install -q -r requirements.txt
  quiet .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .  # engine importable anywhere
  echo "$want" > "$stamp"
fi

if command -v npm >/dev/null && [ ! -d node_modules/gltf-validator ]; then
  echo "setup: installing the Khronos glTF validator (npm)" >&2
  npm install --no-audit --no-fund --silent >/dev/null 2>&1 || echo "setup: npm install failed; glTF validation tests will be skipped" >&2
fi

if ! .venv/bin/python -m engine assets list --check ict-facekit >/dev/null 2>&1; then
  shared=${GANFIT_SHARED_ASSETS:-../shared/assets/ict-facekit}
  if [ -f "$shared/materialize.py" ]; then
    echo "setup: importing ICT-FaceKit from the local copy in $shared" >&2
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    .venv/bin/python "$shared/materialize.py" "$tmp" >/dev/null
    .venv/bin/python -m engine assets fetch --from "$tmp/FaceXModel"
  else
    echo "setup: downloading ICT-FaceKit" >&2
    .venv/bin/python -m engine assets fetch
  fi
fi
