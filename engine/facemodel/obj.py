"""A reader for the Wavefront OBJ files of the ICT-FaceKit model.

Only what the model uses: `v` positions, `vt` texture coordinates, `f` polygons with
`v/vt` corners (triangles and quads), and `usemtl` material groups. Written here rather
than taken from a mesh library so the importer keeps quads and per-corner UVs exactly as
the file has them, with no dependency beyond numpy.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ObjMesh:
    """A polygon mesh as stored in an OBJ file (0-based indices).

    vertices: (V, 3) float64. uvs: (T, 2) float64. polygon_sizes: (P,) int32.
    polygon_vertices / polygon_uvs: (L,) int32, L = polygon_sizes.sum(), the corners of
    each polygon in order. polygon_materials: (P,) int32 into material_names.
    """

    vertices: np.ndarray
    uvs: np.ndarray
    polygon_sizes: np.ndarray
    polygon_vertices: np.ndarray
    polygon_uvs: np.ndarray
    polygon_materials: np.ndarray
    material_names: tuple[str, ...]


def read_obj_vertices(text: str) -> np.ndarray:
    """(V, 3) float64 `v` positions of an OBJ file's text, fast (no faces parsed)."""
    rows = [line[2:] for line in text.split("\n") if line.startswith("v ")]
    values = np.array(" ".join(rows).split(), dtype=np.float64)
    if values.size != 3 * len(rows):
        raise ValueError("malformed 'v' lines (expected 3 numbers each)")
    return values.reshape(-1, 3)


def read_obj(text: str) -> ObjMesh:
    """Parse a whole OBJ file: positions, UVs, polygons and material groups."""
    vertices = read_obj_vertices(text)
    uv_rows: list[str] = []
    sizes: list[int] = []
    corners: list[str] = []
    materials: list[int] = []
    material_names: list[str] = []
    current = -1
    for line in text.split("\n"):
        if line.startswith("vt "):
            uv_rows.append(line[3:])
        elif line.startswith("f "):
            parts = line[2:].split()
            sizes.append(len(parts))
            corners.extend(parts)
            materials.append(current)
        elif line.startswith("usemtl "):
            name = line[7:].strip()
            if name not in material_names:
                material_names.append(name)
            current = material_names.index(name)
    uvs = np.array(" ".join(uv_rows).split(), dtype=np.float64).reshape(-1, 2)
    pairs = np.array([c.split("/")[:2] for c in corners], dtype=np.int64)
    if pairs.shape != (len(corners), 2):
        raise ValueError("faces must have v/vt corners")
    if min(materials, default=0) < 0:
        raise ValueError("a face comes before any usemtl")
    return ObjMesh(
        vertices=vertices,
        uvs=uvs,
        polygon_sizes=np.array(sizes, dtype=np.int32),
        polygon_vertices=(pairs[:, 0] - 1).astype(np.int32),
        polygon_uvs=(pairs[:, 1] - 1).astype(np.int32),
        polygon_materials=np.array(materials, dtype=np.int32),
        material_names=tuple(material_names),
    )
