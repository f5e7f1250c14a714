"""Writing the result folder (schema "ganfit-result/1", DESIGN.md) atomically.

Everything is written into a temporary sibling folder which is renamed into place only
when complete, so a crash never leaves a half-written result that looks whole, and an
existing folder is replaced only with --force.
"""

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import BadInputError

SCHEMA = "ganfit-result/1"


@dataclass
class ResultMesh:
    """mesh.npz content. vertices (V,3) cm; polygon_sizes (P,); polygon_vertices (L,);
    loop_uvs (L,2); polygon_materials (P,); material_names; expression_names (E,);
    expression_deltas (E,V,3); landmark_vertices (68,)."""

    vertices: np.ndarray
    polygon_sizes: np.ndarray
    polygon_vertices: np.ndarray
    loop_uvs: np.ndarray
    polygon_materials: np.ndarray
    material_names: list[str]
    expression_names: list[str]
    expression_deltas: np.ndarray
    landmark_vertices: np.ndarray


def check_destination(out: Path, force: bool) -> None:
    """Refuse (exit 2) to overwrite an existing path without --force, before any work."""
    if out.exists() and not force:
        raise BadInputError(f"{out} already exists; choose another --out or pass --force")
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out} exists and is not a folder")
    if not out.parent.exists():
        raise BadInputError(f"the folder {out.parent} for --out does not exist")


def write_result(out: Path, force: bool, info: dict, mesh: ResultMesh, texture: np.ndarray,
                 texture_mask: np.ndarray, preview: np.ndarray) -> Path:
    """Write the folder; returns the path of its result.json.

    info: result.json content without "schema". texture: (T,T,3) uint8 sRGB;
    texture_mask: (T,T) bool; preview: (H,W,3) uint8.
    """
    check_destination(out, force)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        np.savez_compressed(
            tmp / "mesh.npz",
            vertices=mesh.vertices.astype(np.float32),
            polygon_sizes=mesh.polygon_sizes.astype(np.int32),
            polygon_vertices=mesh.polygon_vertices.astype(np.int32),
            loop_uvs=mesh.loop_uvs.astype(np.float32),
            polygon_materials=mesh.polygon_materials.astype(np.int32),
            material_names=np.array(mesh.material_names),
            expression_names=np.array(mesh.expression_names),
            expression_deltas=mesh.expression_deltas.astype(np.float32),
            landmark_vertices=mesh.landmark_vertices.astype(np.int32),
        )
        Image.fromarray(texture).save(tmp / "texture.png")
        Image.fromarray(texture_mask.astype(np.uint8) * 255).save(tmp / "texture_mask.png")
        Image.fromarray(preview).save(tmp / "preview.png")
        (tmp / "result.json").write_text(json.dumps({"schema": SCHEMA, **info}, indent=1))
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "result.json"
