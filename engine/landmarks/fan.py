"""FAN (face-alignment, Bulat & Tzimiropoulos 2017) as a second 68-point detector backend.

The `face-alignment` package (BSD-3 code) is optional and imported only when this backend
is constructed. It ships no weights: on first use it downloads its S3FD face detector and
2DFAN4 network through torch.hub into `<torch hub dir>/checkpoints`. Offline and without
those files this backend raises MissingAssetError naming the command that gets them.
"""

from __future__ import annotations

import shutil
import urllib.error
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.errors import MissingAssetError
from engine.landmarks.base import DetectedFace, LandmarkDetector, check_rgb

FETCH_COMMAND = "python -m engine assets fetch --with fan"
INSTALL_PACKAGE = "pip install face-alignment==1.5.0"


def weights_dir() -> Path:
    """Where face-alignment's downloads land: torch.hub's checkpoint folder."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _import_face_alignment():
    try:
        import face_alignment
    except ImportError as error:
        raise MissingAssetError(
            "the FAN landmark detector needs the face-alignment package: "
            f"{INSTALL_PACKAGE} into the engine's Python, then {FETCH_COMMAND} while online "
            f"(its weights go to {weights_dir()})"
        ) from error
    return face_alignment


class FanDetector(LandmarkDetector):
    """face-alignment's S3FD detector + 2DFAN4 68-point landmarks (iBUG order)."""

    name = "fan"

    def __init__(self, device: str = "cpu", face_detector: str = "sfd") -> None:
        fa = _import_face_alignment()
        landmarks_type = getattr(fa.LandmarksType, "TWO_D", None)
        if landmarks_type is None:  # face-alignment < 1.4 spelled it _2D
            landmarks_type = fa.LandmarksType._2D
        try:
            self._fa = fa.FaceAlignment(
                landmarks_type, device=device, flip_input=False, face_detector=face_detector
            )
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            raise MissingAssetError(
                f"FAN weights are not in {weights_dir()} and could not be downloaded ({error}); "
                f"run {FETCH_COMMAND} once while online"
            ) from error

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        rgb = check_rgb(rgb)
        landmarks, _scores, boxes = self._fa.get_landmarks_from_image(rgb, return_bboxes=True)
        if not landmarks:
            return []
        faces = []
        for points, box in zip(landmarks, boxes, strict=True):
            box = np.asarray(box, dtype=np.float64)
            score = float(box[4]) if box.shape[0] > 4 else 1.0
            faces.append(DetectedFace(np.asarray(points)[:, :2], box[:4], min(max(score, 0), 1)))
        return sorted(faces, key=lambda f: f.area, reverse=True)


def fan_status(home: Path) -> dict:
    """What `assets list` shows for FAN (the weights live in torch.hub's cache, not `home`)."""
    del home
    try:
        _import_face_alignment()
    except MissingAssetError:
        return {"name": "fan", "installed": False, "path": None,
                "detail": f"optional: {INSTALL_PACKAGE}, then {FETCH_COMMAND}"}
    folder = weights_dir()
    found = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
    have = any(n.startswith("s3fd") for n in found) and any(n.startswith("2DFAN4") for n in found)
    return {"name": "fan", "installed": have, "path": str(folder) if have else None,
            "detail": "face-alignment weights (s3fd, 2DFAN4)" if have
            else f"weights not downloaded: {FETCH_COMMAND}"}


def install_fan(source: Path | None, home: Path, log: Callable[[str], None] = print) -> Path:
    """`assets fetch --with fan`: let face-alignment download its weights, or copy them from
    `source` (a folder holding its s3fd-*.pth and 2DFAN4-*.zip files) for offline machines."""
    del home
    _import_face_alignment()
    folder = weights_dir()
    if source is not None:
        files = [p for p in Path(source).iterdir() if p.name.startswith(("s3fd", "2DFAN4"))]
        if not files:
            raise MissingAssetError(f"no s3fd-* or 2DFAN4-* weight files in {source}")
        folder.mkdir(parents=True, exist_ok=True)
        for p in files:
            shutil.copy2(p, folder / p.name)
            log(f"copied {p.name} to {folder}")
        return folder
    log(f"downloading FAN weights into {folder}")
    FanDetector()
    return folder
