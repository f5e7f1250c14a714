"""The FAN landmark detector's weights (face-alignment, BSD-3 code).

The optional `face-alignment` package ships no weights: on first use it downloads its S3FD
face detector and 2DFAN4 network through torch.hub into `<torch hub dir>/checkpoints`.
`install` triggers that download (online) or copies the files from a folder (offline);
`status` says whether they are there.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
from collections.abc import Callable
from pathlib import Path

from engine.errors import MissingAssetError

NAME = "fan"
FETCH_COMMAND = "python -m engine assets fetch --with fan"
INSTALL_PACKAGE = "pip install face-alignment==1.5.0"


def weights_dir() -> Path:
    """Where face-alignment's downloads land: torch.hub's checkpoint folder
    ($TORCH_HOME/hub/checkpoints, TORCH_HOME defaulting to $XDG_CACHE_HOME/torch, as torch.hub
    documents), found without importing torch so `assets list` stays fast."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("TORCH_HOME", cache / "torch")) / "hub" / "checkpoints"


def import_face_alignment():
    try:
        import face_alignment
    except ImportError as error:
        raise MissingAssetError(
            "the FAN landmark detector needs the face-alignment package: "
            f"{INSTALL_PACKAGE} into the engine's Python, then {FETCH_COMMAND} while online "
            f"(its weights go to {weights_dir()})"
        ) from error
    return face_alignment


def load_face_alignment(device: str = "cpu", face_detector: str = "sfd"):
    """face-alignment's 2-D FaceAlignment (S3FD + 2DFAN4), downloading its weights into
    weights_dir() on first use; MissingAssetError offline without them."""
    fa = import_face_alignment()
    landmarks_type = getattr(fa.LandmarksType, "TWO_D", None)
    if landmarks_type is None:  # face-alignment < 1.4 spelled it _2D
        landmarks_type = fa.LandmarksType._2D
    try:
        return fa.FaceAlignment(landmarks_type, device=device, flip_input=False,
                                face_detector=face_detector)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        raise MissingAssetError(
            f"FAN weights are not in {weights_dir()} and could not be downloaded ({error}); "
            f"run {FETCH_COMMAND} once while online"
        ) from error


def status(home: Path) -> dict:
    """What `assets list` shows for FAN (the weights live in torch.hub's cache, not `home`)."""
    del home
    try:
        import_face_alignment()
    except MissingAssetError:
        return {"name": "fan", "installed": False, "path": None,
                "detail": f"optional: {INSTALL_PACKAGE}, then {FETCH_COMMAND}"}
    folder = weights_dir()
    found = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
    have = any(n.startswith("s3fd") for n in found) and any(n.startswith("2DFAN4") for n in found)
    return {"name": "fan", "installed": have, "path": str(folder) if have else None,
            "detail": "face-alignment weights (s3fd, 2DFAN4)" if have
            else f"weights not downloaded: {FETCH_COMMAND}"}


def install(source: Path | None, home: Path, log: Callable[[str], None] = print) -> Path:
    """`assets fetch --with fan`: let face-alignment download its weights, or copy them from
    `source` (a folder holding its s3fd-*.pth and 2DFAN4-*.zip files) for offline machines."""
    del home
    import_face_alignment()
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
    load_face_alignment()
    return folder
