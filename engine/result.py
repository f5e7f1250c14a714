"""The result folder (schema "ganfit-result/1", DESIGN.md) in both directions.

`write_result` writes it atomically (a temporary sibling folder renamed into place when
complete, so a crash never leaves a half-written result that looks whole);
`read_result` reads it back into the same typed records, for tests, benchmarks and
ablation scripts. This module is the one owner of the file names and keys.
"""

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image

from engine import publish
from engine.errors import BadInputError, EngineError

SCHEMA = "ganfit-result/1"
RESULT_JSON = "result.json"
MESH_NPZ = "mesh.npz"
TEXTURE_PNG = "texture.png"
TEXTURE_MASK_PNG = "texture_mask.png"
PREVIEW_PNG = "preview.png"


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

    _DTYPES = {"vertices": np.float32, "polygon_sizes": np.int32,
               "polygon_vertices": np.int32, "loop_uvs": np.float32,
               "polygon_materials": np.int32, "expression_deltas": np.float32,
               "landmark_vertices": np.int32}

    def arrays(self) -> dict[str, np.ndarray]:
        """What mesh.npz stores, in its dtypes."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            dtype = self._DTYPES.get(f.name)
            out[f.name] = np.asarray(value, dtype=dtype) if dtype else np.array(value)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "ResultMesh":
        values: dict = {f.name: arrays[f.name] for f in fields(cls)}
        for name in ("material_names", "expression_names"):
            values[name] = [str(n) for n in values[name]]
        return cls(**values)


@dataclass
class Metrics:
    """How well a fit explains its photo(s); None where not measured."""

    landmark_error_px: float | None
    identity_cosine: float | None
    photometric_l1: float | None


@dataclass
class Camera:
    """OpenCV convention, pixels of the original photo: x = R X + t, u = fx x/z + cx."""

    rotation: list[list[float]]
    translation: list[float]
    focal: list[float]
    principal_point: list[float]


@dataclass
class ViewRecord:
    """One input photo: where it is, what was detected and fitted, how well."""

    path: str
    size: list[int]
    landmarks: list[list[float]]
    expression_weights: dict[str, float]
    camera: Camera
    metrics: Metrics
    notes: list[str]

    @classmethod
    def from_json(cls, data: dict) -> "ViewRecord":
        return cls(**{**data, "camera": Camera(**data["camera"]),
                      "metrics": Metrics(**data["metrics"])})


@dataclass
class ResultInfo:
    """result.json without "schema" (see DESIGN.md and the README's result.json details).

    maps: further maps in the folder, by role ("normal", "roughness", "ao" in the skin
    atlas; "iris" in the irises' own UVs; "teeth" and "gums" in their UV tiles, u modulo 1)
    -> file name.
    """

    model: dict[str, str]
    expression_names: list[str]
    quality: str
    device: str
    engine_version: str
    python: str
    torch: str
    landmark_detector: str
    identity_network: str | None
    texture_model: str | None
    texture_source: str
    seed: int
    timings: dict[str, float]
    peak_cuda_memory_mb: float | None
    views: list[ViewRecord]
    metrics: Metrics
    units: str = "cm"
    up_axis: str = "Y"
    maps: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> "ResultInfo":
        if data.get("schema") != SCHEMA:
            raise BadInputError(f"not a {SCHEMA} result (schema {data.get('schema')!r})")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["views"] = [ViewRecord.from_json(v) for v in data["views"]]
        values["metrics"] = Metrics(**data["metrics"])
        return cls(**values)


@dataclass
class ResultImages:
    """The folder's images. texture: (T, 2T, 3) uint8 sRGB atlas; texture_mask: (T, 2T)
    bool, texels seen in the photo(s); preview: (H, W, 3) uint8; maps: role -> (file name,
    uint8 image) of the further maps (result.json's `maps` names them)."""

    texture: np.ndarray
    texture_mask: np.ndarray
    preview: np.ndarray
    maps: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)

    def map_files(self) -> dict[str, str]:
        """role -> file name, as result.json's `maps`."""
        return {role: name for role, (name, _) in self.maps.items()}


@dataclass
class Result:
    """A result folder read back."""

    folder: Path
    info: ResultInfo
    mesh: ResultMesh
    images: ResultImages


def check_destination(out: Path, force: bool) -> None:
    """Claim `out` before any work (engine.publish.claim): exit 2 if it exists without
    --force, if its folder is missing or not writable, or if another run is writing it."""
    publish.claim(out, force)


def write_result(out: Path, force: bool, info: ResultInfo, mesh: ResultMesh,
                 images: ResultImages) -> Path:
    """Write the folder; returns the path of its result.json."""
    check_destination(out, force)
    tmp = publish.staging_folder(out)
    try:
        np.savez_compressed(tmp / MESH_NPZ, **mesh.arrays())
        Image.fromarray(images.texture).save(tmp / TEXTURE_PNG)
        Image.fromarray(images.texture_mask.astype(np.uint8) * 255).save(tmp / TEXTURE_MASK_PNG)
        Image.fromarray(images.preview).save(tmp / PREVIEW_PNG)
        for name, image in images.maps.values():
            Image.fromarray(image).save(tmp / name)
        (tmp / RESULT_JSON).write_text(json.dumps(info.to_json(), indent=1))
        os.chmod(tmp, 0o755)
        publish.publish(tmp, out, force)
    except OSError as error:  # a full disk, a vanished folder: one clear line (exit 5)
        shutil.rmtree(tmp, ignore_errors=True)
        raise EngineError(f"could not write the result beside {out}: "
                          f"{error.strerror or error}") from error
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / RESULT_JSON


def read_info(folder: Path) -> ResultInfo:
    """result.json of a result folder (or the path of the json itself)."""
    path = folder if folder.suffix == ".json" else folder / RESULT_JSON
    return ResultInfo.from_json(json.loads(path.read_text()))


def read_result(folder: Path) -> Result:
    """The whole folder: result.json, mesh.npz and the images."""
    info = read_info(folder)
    with np.load(folder / MESH_NPZ) as arrays:
        mesh = ResultMesh.from_arrays(dict(arrays))

    def image(name: str) -> np.ndarray:
        return np.asarray(Image.open(folder / name))

    images = ResultImages(image(TEXTURE_PNG), image(TEXTURE_MASK_PNG) > 127, image(PREVIEW_PNG),
                          {role: (name, image(name)) for role, name in info.maps.items()})
    return Result(folder, info, mesh, images)
