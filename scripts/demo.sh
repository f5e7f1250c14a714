#!/usr/bin/env bash
# The main job on the sample photo (skimage's astronaut, public domain, no download):
# set up, reconstruct the head with the engine, then build it in Blender through the
# installed add-on's own operator and save out/astronaut.blend and out/astronaut.glb.
# QUALITY=standard|high and DEVICE=cuda pick another preset or the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/python -c "import skimage.data, PIL.Image; PIL.Image.fromarray(skimage.data.astronaut()).save('out/astronaut.png')"
.venv/bin/python -m engine reconstruct out/astronaut.png --out out/astronaut \
  --quality "${QUALITY:-preview}" --device "${DEVICE:-auto}" --force
.venv/bin/python scripts/blender_import.py out/astronaut --blend out/astronaut.blend --glb out/astronaut.glb
echo "done: out/astronaut/ (result folder, preview.png), out/astronaut.blend, out/astronaut.glb"
