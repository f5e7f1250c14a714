"""gltfpack (meshoptimizer's glTF packer, npm `gltfpack`) as a post-process; no bpy.

Blender's glTF exporter cannot quantise or meshopt-compress; gltfpack does both, and packs
morph targets too (EXT_meshopt_compression; Draco does not). It is found at
$GANFIT_GLTFPACK, on PATH, or in a checkout's node_modules (scripts/setup.sh installs it
there). The npm build has no BasisU encoder: KTX2 textures are made by ktx2.py.
"""

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

ENV_GLTFPACK = "GANFIT_GLTFPACK"
# Keep node names (the head's), materials and extras (glTF's morph target names).
_KEEP = ("-kn", "-km", "-ke")


class GltfpackError(RuntimeError):
    """gltfpack is missing or failed; the message says which."""


def find_gltfpack(roots: Iterable[Path] = (),
                  environ: Mapping[str, str] = os.environ) -> Path | None:
    """The gltfpack executable: $GANFIT_GLTFPACK, PATH, then <root>/node_modules/.bin."""
    if environ.get(ENV_GLTFPACK, "").strip():
        path = Path(environ[ENV_GLTFPACK].strip()).expanduser()
        return path if path.is_file() else None
    found = shutil.which("gltfpack")
    if found:
        return Path(found)
    for root in roots:
        path = root / "node_modules" / ".bin" / "gltfpack"
        if path.is_file():
            return path
    return None


def _run(command: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GltfpackError(f"gltfpack did not run: {error}") from error


def pack(tool: Path, source: Path, target: Path, compress: bool = True,
         timeout_s: float = 300.0) -> None:
    """Quantise `source` (glb) into `target`, meshopt-compressed when `compress`;
    GltfpackError when gltfpack fails."""
    command = [str(tool), "-i", str(source), "-o", str(target), *_KEEP]
    if compress:
        command.append("-c")
    run = _run(command, timeout_s)
    if run.returncode != 0 or not target.is_file():
        tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GltfpackError(f"gltfpack failed ({run.returncode}): {tail[0]}")
