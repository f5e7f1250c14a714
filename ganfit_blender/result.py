"""Read and check a result folder (schema "ganfit-result/1", DESIGN.md); no bpy.

Everything the scene builder needs is checked here first (shapes, index ranges, finite
values, names), so a damaged folder becomes one clear `ResultError` message before any
Blender data is created.

Axes: the model is in centimetres, Y up, the face looking along +Z. Blender users expect
metres, Z up, a face looking along -Y, so model (x, y, z) cm -> Blender (x, -z, y) / 100
(`MODEL_TO_BLENDER`, a proper rotation times 0.01).
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "ganfit-result/1"
RESULT_JSON = "result.json"
MESH_NPZ = "mesh.npz"
TEXTURE_PNG = "texture.png"

# Rows map model axes to Blender axes: blender = MODEL_TO_BLENDER @ model (directions);
# points are also scaled by CM_TO_M.
MODEL_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
CM_TO_M = 0.01
# result.json `maps` roles the add-on uses: the skin atlas's normal, roughness and AO
# maps, and the iris, teeth and gums groups' colour maps (in their own UVs).
MAP_ROLES = ("normal", "roughness", "ao", "iris", "teeth", "gums")


class ResultError(ValueError):
    """A result folder that is missing, from another schema, or inconsistent."""


@dataclass(frozen=True)
class Camera:
    """One view's camera (OpenCV): x_cam = rotation @ X_model + translation, in cm.

    rotation (3,3), translation (3,), focal (2,) [fx, fy] and principal_point (2,)
    [cx, cy] in pixels of the photo; pixel u = fx * x/z + cx, v = fy * y/z + cy.
    """

    rotation: np.ndarray
    translation: np.ndarray
    focal: np.ndarray
    principal_point: np.ndarray


@dataclass(frozen=True)
class View:
    """One input photo: its path, size (width, height) in pixels, the fitted expression
    weights (E,), the camera, the detected landmarks (68,2) in pixels (or None) and the
    engine's notes on it (several faces, a drawn-looking face, another person, ...)."""

    path: str
    size: tuple[int, int]
    expression_weights: np.ndarray
    camera: Camera | None
    landmarks: np.ndarray | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaceResult:
    """A checked result folder.

    vertices (V,3) float32 cm, neutral expression; polygon_sizes (P,) and
    polygon_vertices (L,) int64 with L = polygon_sizes.sum(); loop_uvs (L,2) float32
    (origin bottom-left, v up: Blender's convention too); polygon_materials (P,) int64
    into material_names; expression_deltas (E,V,3) float32 cm; landmark_vertices (68,).
    """

    folder: Path
    meta: dict[str, Any]
    vertices: np.ndarray
    polygon_sizes: np.ndarray
    polygon_vertices: np.ndarray
    loop_uvs: np.ndarray
    polygon_materials: np.ndarray
    material_names: tuple[str, ...]
    expression_names: tuple[str, ...]
    expression_deltas: np.ndarray
    landmark_vertices: np.ndarray
    views: tuple[View, ...]

    @property
    def texture_path(self) -> Path | None:
        """texture.png, or None when the folder has none (the skin is then untextured)."""
        path = self.folder / TEXTURE_PNG
        return path if path.is_file() else None

    @property
    def map_paths(self) -> dict[str, Path]:
        """result.json's further maps that exist, by role (MAP_ROLES) -> file; unknown
        roles and missing files are left out."""
        maps = self.meta.get("maps") or {}
        paths = {role: self.folder / str(name) for role, name in maps.items()
                 if role in MAP_ROLES and isinstance(name, str)}
        return {role: path for role, path in paths.items() if path.is_file()}

    @property
    def loop_starts(self) -> np.ndarray:
        """(P,) index of each polygon's first corner in polygon_vertices."""
        return np.concatenate([[0], np.cumsum(self.polygon_sizes)[:-1]]).astype(np.int64)

    def fitted_weights(self, view: int = 0) -> np.ndarray:
        """(E,) the expression weights fitted to one photo (zeros without views)."""
        if not self.views:
            return np.zeros(len(self.expression_names), dtype=np.float32)
        return self.views[view].expression_weights


def to_blender_points(points_cm: np.ndarray) -> np.ndarray:
    """(N,3) model points in cm -> (N,3) float32 Blender points in metres."""
    return (points_cm @ (MODEL_TO_BLENDER.T * CM_TO_M)).astype(np.float32)


def to_blender_directions(directions: np.ndarray) -> np.ndarray:
    """(N,3) model-space directions -> (N,3) Blender directions (rotation only)."""
    return directions @ MODEL_TO_BLENDER.T


def from_blender_points(points_m: np.ndarray) -> np.ndarray:
    """Inverse of `to_blender_points`: (N,3) Blender metres -> (N,3) model cm."""
    return points_m @ MODEL_TO_BLENDER / CM_TO_M


@dataclass(frozen=True)
class ImagePlane:
    """Where to put a photo in model space so that, seen from its camera, it covers the
    view exactly: `center` (3,) of the image rectangle in cm, unit axes `right` (3,) and
    `up` (3,) along image +x and image -y, and its `width` and `height` in cm."""

    center: np.ndarray
    right: np.ndarray
    up: np.ndarray
    width: float
    height: float


def image_plane(camera: Camera, size: tuple[int, int], depth: float) -> ImagePlane:
    """The photo's rectangle on the plane z_cam = depth (cm) in front of the camera.

    Pixel centres are at integer coordinates (OpenCV), so the photo spans u in
    [-0.5, W - 0.5] and v in [-0.5, H - 0.5].
    """
    width_px, height_px = size
    fx, fy = (float(f) for f in camera.focal)
    cx, cy = (float(c) for c in camera.principal_point)
    center_cam = np.array([
        ((width_px - 1) / 2 - cx) * depth / fx,
        ((height_px - 1) / 2 - cy) * depth / fy,
        depth,
    ])
    rot_t = camera.rotation.T
    return ImagePlane(
        center=rot_t @ (center_cam - camera.translation),
        right=rot_t @ np.array([1.0, 0.0, 0.0]),
        up=rot_t @ np.array([0.0, -1.0, 0.0]),
        width=width_px * depth / fx,
        height=height_px * depth / fy,
    )


def _fail(folder: Path, message: str) -> ResultError:
    return ResultError(f"{folder.name}: {message}")


def _array(data: Any, name: str, folder: Path) -> np.ndarray:
    if name not in data:
        raise _fail(folder, f"{MESH_NPZ} has no '{name}'")
    return np.asarray(data[name])


def _check_shape(array: np.ndarray, shape: tuple[int | None, ...], what: str,
                 folder: Path) -> None:
    ok = array.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(array.shape, shape, strict=True))
    if not ok:
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise _fail(folder, f"'{what}' has shape {tuple(array.shape)}, expected {expected}")


def _check_index(array: np.ndarray, bound: int, what: str, folder: Path) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.integer):
        raise _fail(folder, f"'{what}' must be integers, not {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= bound):
        raise _fail(folder, f"'{what}' has indices outside [0, {bound})")
    return array.astype(np.int64)


def _check_finite(array: np.ndarray, what: str, folder: Path) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise _fail(folder, f"'{what}' must be finite floats")
    return array.astype(np.float32)


def _read_json(folder: Path) -> dict[str, Any]:
    path = folder / RESULT_JSON
    if not path.is_file():
        raise ResultError(f"{folder}: not a result folder (no {RESULT_JSON})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(folder, f"{RESULT_JSON} is unreadable ({error})") from None
    if not isinstance(meta, dict):
        raise _fail(folder, f"{RESULT_JSON} is not a JSON object")
    if meta.get("schema") != SCHEMA:
        raise _fail(folder, f"schema {meta.get('schema')!r} is not {SCHEMA!r}; "
                            "update the add-on or re-run the engine")
    return meta


def _read_camera(entry: Any, folder: Path, index: int) -> Camera | None:
    if entry is None:
        return None
    try:
        camera = Camera(
            rotation=np.asarray(entry["rotation"], dtype=np.float64).reshape(3, 3),
            translation=np.asarray(entry["translation"], dtype=np.float64).reshape(3),
            focal=np.asarray(entry["focal"], dtype=np.float64).reshape(2),
            principal_point=np.asarray(entry["principal_point"], dtype=np.float64).reshape(2),
        )
    except (KeyError, TypeError, ValueError):
        raise _fail(folder, f"views[{index}].camera is malformed") from None
    if not all(np.isfinite(a).all() for a in (camera.rotation, camera.translation,
                                              camera.focal, camera.principal_point)):
        raise _fail(folder, f"views[{index}].camera has non-finite values")
    if not np.allclose(camera.rotation @ camera.rotation.T, np.eye(3), atol=1e-4):
        raise _fail(folder, f"views[{index}].camera.rotation is not a rotation")
    return camera


def _read_weights(entry: dict, index: int, names: tuple[str, ...], folder: Path) -> np.ndarray:
    """views[i].expression_weights: {name: weight} (as the engine writes it) or a list in
    expression_names order; (E,) float32."""
    weights = entry.get("expression_weights")
    if isinstance(weights, dict):
        missing = [n for n in names if n not in weights]
        if missing:
            raise _fail(folder, f"views[{index}].expression_weights lacks {missing[0]!r}")
        weights = [weights[n] for n in names]
    if not isinstance(weights, list):
        raise _fail(folder, f"views[{index}] has no expression_weights")
    try:
        array = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(folder, f"views[{index}].expression_weights are not numbers") from None
    if array.shape != (len(names),) or not np.isfinite(array).all():
        raise _fail(folder, f"views[{index}].expression_weights must be {len(names)} "
                            "finite numbers")
    return array.astype(np.float32)


def _read_view(entry: Any, index: int, names: tuple[str, ...], folder: Path) -> View:
    if not isinstance(entry, dict):
        raise _fail(folder, f"views[{index}] is not an object")
    size = entry.get("size") or (0, 0)
    landmarks = entry.get("landmarks")
    landmarks = None if landmarks is None else np.asarray(landmarks, dtype=np.float64)
    if landmarks is not None and landmarks.shape != (68, 2):
        raise _fail(folder, f"views[{index}].landmarks must be 68 (x, y) pairs")
    return View(
        path=str(entry.get("path", "")),
        size=(int(size[0]), int(size[1])),
        expression_weights=_read_weights(entry, index, names, folder),
        camera=_read_camera(entry.get("camera"), folder, index),
        landmarks=landmarks,
        notes=tuple(str(n) for n in entry.get("notes") or ()),
    )


def notes_message(result: "FaceResult") -> str | None:
    """The engine's notes on the photos in one line for the artist (None without any)."""
    notes = list(dict.fromkeys(n for view in result.views for n in view.notes))
    if not notes:
        return None
    return "Note: " + "; ".join(notes)


def load_result(folder: str | Path) -> FaceResult:
    """Read and check a result folder (or the path of its result.json).

    Raises ResultError with a one-line message naming the folder and the problem.
    """
    folder = Path(folder)
    if folder.name == RESULT_JSON:
        folder = folder.parent
    meta = _read_json(folder)
    try:
        data = dict(np.load(folder / MESH_NPZ, allow_pickle=False))
    except FileNotFoundError:
        raise _fail(folder, f"{MESH_NPZ} is missing") from None
    except (OSError, ValueError) as error:
        raise _fail(folder, f"{MESH_NPZ} is unreadable ({error})") from None

    vertices = _array(data, "vertices", folder)
    _check_shape(vertices, (None, 3), "vertices", folder)
    vertices = _check_finite(vertices, "vertices", folder)
    num_vertices = len(vertices)

    sizes = _array(data, "polygon_sizes", folder)
    _check_shape(sizes, (None,), "polygon_sizes", folder)
    sizes = _check_index(sizes, 1 << 16, "polygon_sizes", folder)
    if sizes.size == 0 or sizes.min() < 3:
        raise _fail(folder, "'polygon_sizes' must be at least 3 per polygon")
    num_loops = int(sizes.sum())
    corners = _array(data, "polygon_vertices", folder)
    _check_shape(corners, (num_loops,), "polygon_vertices", folder)
    corners = _check_index(corners, num_vertices, "polygon_vertices", folder)
    loop_uvs = _array(data, "loop_uvs", folder)
    _check_shape(loop_uvs, (num_loops, 2), "loop_uvs", folder)
    loop_uvs = _check_finite(loop_uvs, "loop_uvs", folder)

    material_names = tuple(str(n) for n in _array(data, "material_names", folder).reshape(-1))
    materials = _array(data, "polygon_materials", folder)
    _check_shape(materials, (len(sizes),), "polygon_materials", folder)
    materials = _check_index(materials, len(material_names), "polygon_materials", folder)

    names = tuple(str(n) for n in _array(data, "expression_names", folder).reshape(-1))
    if len(set(names)) != len(names):
        raise _fail(folder, "'expression_names' has duplicates")
    json_names = meta.get("expression_names")
    if json_names is not None and tuple(json_names) != names:
        raise _fail(folder, f"expression names in {RESULT_JSON} and {MESH_NPZ} differ")
    deltas = _array(data, "expression_deltas", folder)
    _check_shape(deltas, (len(names), num_vertices, 3), "expression_deltas", folder)
    deltas = _check_finite(deltas, "expression_deltas", folder)
    landmarks = _array(data, "landmark_vertices", folder)
    _check_shape(landmarks, (None,), "landmark_vertices", folder)
    landmarks = _check_index(landmarks, num_vertices, "landmark_vertices", folder)

    units, up = meta.get("units", "cm"), meta.get("up_axis", meta.get("up", "Y"))
    if units != "cm" or up != "Y":
        raise _fail(folder, f"units {units!r} / up axis {up!r}: only cm and Y are supported")
    views = meta.get("views") or []
    if not isinstance(views, list):
        raise _fail(folder, "'views' is not a list")
    return FaceResult(
        folder=folder,
        meta=meta,
        vertices=vertices,
        polygon_sizes=sizes,
        polygon_vertices=corners,
        loop_uvs=loop_uvs,
        polygon_materials=materials,
        material_names=material_names,
        expression_names=names,
        expression_deltas=deltas,
        landmark_vertices=landmarks,
        views=tuple(_read_view(v, i, names, folder) for i, v in enumerate(views)),
    )


def plane_depth(result: FaceResult, camera: Camera, margin: float = 1.0) -> float:
    """A depth (cm) just behind the whole head as seen from `camera`, so a photo placed
    there (see `image_plane`) never cuts through the mesh."""
    depth = (result.vertices @ camera.rotation.T + camera.translation)[:, 2]
    return float(depth.max()) + margin


def object_name(photo: str, limit: int = 60) -> str:
    """A Blender object name from a photo path: its stem, within Blender's 63-byte limit."""
    stem = Path(photo).stem or "Face"
    encoded = stem.encode("utf-8")[:limit]
    return encoded.decode("utf-8", errors="ignore") or "Face"


def slider_range(weight: float) -> tuple[float, float]:
    """(min, max) for a shape-key slider that must show `weight`: [0, 1] widened to it."""
    return (min(0.0, math.floor(weight)), max(1.0, math.ceil(weight)))


def group_loops(result: FaceResult, group: str) -> np.ndarray:
    """(N,) indices into polygon_vertices / loop_uvs of the polygons of one material
    group (empty when the result has no such group)."""
    if group not in result.material_names:
        return np.zeros(0, dtype=np.int64)
    polygons = np.flatnonzero(result.polygon_materials == result.material_names.index(group))
    sizes = result.polygon_sizes[polygons]
    first = np.repeat(result.loop_starts[polygons], sizes)
    within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return first + within


def cornea_uv_radius(result: FaceResult, sclera: str, bin_deg: float = 5.0) -> float | None:
    """UV radius, around the sclera map's centre (0.5, 0.5), of the see-through cornea.

    The model's eyeball is two shells: an inner one (the iris group) and the sclera
    around it, whose front bulges out as the cornea. The limbus, where the bulge meets
    the eyeball sphere, is where the sclera is closest to the eye's centre within the
    front hemisphere; its UV radius is returned. None without such a sclera group.
    """
    loops = group_loops(result, sclera)
    if loops.size == 0:
        return None
    points = result.vertices[result.polygon_vertices[loops]].astype(np.float64)
    centre = result.vertices[np.unique(result.polygon_vertices[loops])].mean(axis=0)
    offsets = points - centre
    radius = np.linalg.norm(offsets, axis=1)
    axis = offsets[np.argmax(points[:, 2])]  # the front-most point: the eyes look +Z
    cosine = offsets @ axis / np.maximum(radius * np.linalg.norm(axis), 1e-12)
    angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    bins = (angle // bin_deg).astype(np.int64)
    front = np.unique(bins[angle < 90.0])
    if front.size < 3:
        return None
    limbus = front[np.argmin([radius[bins == b].mean() for b in front])]
    uv_radius = np.linalg.norm(result.loop_uvs[loops] - 0.5, axis=1)
    return float(uv_radius[bins == limbus].mean())
