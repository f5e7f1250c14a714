"""Export sizes per engine preset, with the Khronos validator's verdict on each glb.

    .venv/bin/python benchmarks/bench_export.py RESULT_DIR [--out DIR] [--arkit]

Builds the head from a result folder through the add-on (scripts/blender_import.py, so
the same operators as the panel) and exports it once per preset of
ganfit_blender/presets.py, then prints one row per file: preset, size, objects (levels of
detail), morph targets, and for glb files the image formats and the validator's errors /
warnings.
"""

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ganfit_blender.presets import PRESETS  # noqa: E402  (plain Python, no bpy)

VALIDATE = ("const v = require(process.argv[1]); const fs = require('fs');"
            "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])))"
            ".then(r => console.log(JSON.stringify(r.issues)));")


def glb_summary(path: Path) -> tuple[int, int, str]:
    """(meshes, morph targets of the first mesh, image count per format) from a glb's
    JSON chunk."""
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    gltf = json.loads(data[20:20 + length])
    formats = Counter(i.get("mimeType", "?").split("/")[-1] for i in gltf.get("images", []))
    return (len(gltf["meshes"]), len(gltf["meshes"][0].get("extras", {}).get("targetNames", [])),
            "+".join(f"{n} {kind}" for kind, n in sorted(formats.items())))


def validate(path: Path) -> str:
    validator = ROOT / "node_modules" / "gltf-validator"
    if shutil.which("node") is None or not validator.is_dir():
        return "validator not installed"
    run = subprocess.run(["node", "-e", VALIDATE, str(validator), str(path)],
                         capture_output=True, text=True, timeout=300)
    issues = json.loads(run.stdout)
    return f"{issues['numErrors']} errors, {issues['numWarnings']} warnings"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path, help="result folder written by the engine")
    parser.add_argument("--out", type=Path, help="keep the files here (default: temporary)")
    parser.add_argument("--arkit", action="store_true", help="exactly ARKit's 52 names")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ganfit-bench-export-"))
    command = [sys.executable, str(ROOT / "scripts" / "blender_import.py"), str(args.result),
               "--blend", str(out / "head.blend")]
    for preset in PRESETS:
        command += ["--target", preset.key, str(out / f"{preset.key.lower()}{preset.extension}")]
    if args.arkit:
        command.append("--arkit")
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr[-2000:], file=sys.stderr)
        return run.returncode
    print(f"{'preset':8} {'file':12} {'MB':>6}  {'meshes':>6} {'targets':>7}  "
          f"{'images':16} validator")
    for preset in PRESETS:
        path = out / f"{preset.key.lower()}{preset.extension}"
        size = path.stat().st_size / 1e6
        if preset.fmt == "GLB":
            meshes, targets, images = glb_summary(path)
            print(f"{preset.label:8} {path.name:12} {size:6.2f}  {meshes:6d} {targets:7d}  "
                  f"{images:16} {validate(path)}")
        else:
            print(f"{preset.label:8} {path.name:12} {size:6.2f}  {'':6} {'':7}  (FBX)")
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
