"""The `texture-pca` asset: the default linear texture model, built on this machine.

No texture model can be downloaded under usable terms, so `assets fetch --with texture-pca`
builds one from the shared data (`--from` a folder holding datasets/congress-portraits,
default $GANFIT_SHARED_DATA or the `shared/` folder beside the checkout): the data builder's
fast path over a fixed subset of the public-domain portraits' training split (the held-out
split is never used), then EM-PCA. When the same folder holds assets/makehuman-skins, the
14 CC0 MakeHuman skin maps and their mirror images join the portraits as full-head samples
(`makehuman.py`): the scalp, ears and back of the head are then learned, not extrapolated.
The per-photo samples are kept in the cache, so an interrupted build resumes. The model
file is written with its manifest (SHA-256, licence, provenance, build settings), checked
on every load.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from engine.assets.install import install_folder
from engine.errors import BadInputError, MissingAssetError

NAME = "texture-pca"
FORMAT_VERSION = 2  # 2: with the MakeHuman full-head samples; a 1 install is rebuilt by setup
MODEL_FILE = "texture_pca.npz"
SETUP_PHOTOS = 160  # the build's subset of the training split: ~10 min on 2 busy cores
COMPONENTS = 48
PORTRAITS = Path("datasets/congress-portraits")
LICENCE = ("built by this project from public-domain US Congress portraits "
           "(Government Printing Office); the model is the project's")
FIX = "run `python -m engine assets fetch --with texture-pca` (needs ../shared/datasets)"


def install_dir(home: Path) -> Path:
    return home / NAME


def default_source() -> Path:
    env = os.environ.get("GANFIT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_model_file(data: Path, out: Path, components: int, info: dict,
                     device: str = "cpu") -> dict:
    """EM-PCA over a data folder's samples, written to `out`; returns the model's info."""
    import numpy as np
    import torch

    from engine.facemodel import load_face_model
    from engine.texture.atlas import atlas_coverage
    from engine.texture.dataset import load_sample, sample_paths
    from engine.texture.linear import build_linear_model

    paths = sample_paths(data)
    if len(paths) < 2:
        raise BadInputError(f"{data} holds {len(paths)} texture samples; at least 2 needed")
    samples = [load_sample(p) for p in paths]
    albedo = torch.from_numpy(np.stack([s.albedo for s in samples])).to(device)
    confidence = torch.from_numpy(np.stack([s.confidence for s in samples])).to(device)
    covered = atlas_coverage(load_face_model(device), albedo.shape[-2])
    info = {**info, "samples": [p.stem for p in paths]}
    model = build_linear_model(albedo, confidence, covered, components, info)
    model.save(out)
    return model.info


def install(source: Path | None, home: Path, log: Callable[[str], None] = print,
            limit: int = SETUP_PHOTOS, workers: int = 2) -> Path:
    """Build the model from the shared data into `home`; returns its folder."""
    from engine.facemodel import load_face_model
    from engine.texture import makehuman
    from engine.texture.dataset import ATLAS_HEIGHT, build_dataset, list_photos

    source = Path(source) if source is not None else default_source()
    portraits = source / PORTRAITS / "images"
    if not portraits.is_dir():
        raise MissingAssetError(f"no portraits at {portraits}: the texture model is built from "
                                "../shared/datasets/congress-portraits (pass --from SHARED)")
    start = time.perf_counter()
    photos = list_photos(portraits, "train", limit)
    log(f"texture-pca: building from {len(photos)} portraits of {portraits}")
    data = home / f"{NAME}-data"
    build_dataset(photos, data, workers=workers, height=ATLAS_HEIGHT, log=log)
    info: dict = {"source": str(portraits), "split": "train", "photo_limit": limit}
    skins = source / makehuman.SKINS
    if (skins / "base.obj").is_file():
        info["makehuman"] = makehuman.write_samples(skins, data, load_face_model("cpu", home),
                                                    ATLAS_HEIGHT, log)
    else:
        log(f"texture-pca: no MakeHuman skins at {skins}: scalp, ears and neck will be "
            "extrapolated from the portraits")
    folder = install_from_data(data, home, info)
    log(f"texture-pca: built in {time.perf_counter() - start:.0f} s")
    return folder


def install_from_data(data: Path, home: Path, info: dict,
                      components: int = COMPONENTS) -> Path:
    """Build the model from a data folder and install it with its manifest, atomically."""
    from engine.texture import makehuman

    def write(folder: Path) -> None:
        extra = info.get("makehuman")
        licence = LICENCE + (f"; with MakeHuman skin textures, {extra['licence']}"
                             if extra else "")
        built = build_model_file(data, folder / MODEL_FILE, components,
                                 {"licence": licence, **info})
        portraits = [s for s in built["samples"]
                     if not s.startswith(makehuman.SAMPLE_PREFIX)]
        skins = (f" + {extra['samples']} MakeHuman full-head skin samples ({extra['maps']} "
                 f"maps and their mirror images, {extra['source']})" if extra else "")
        manifest = {"format": FORMAT_VERSION, "name": NAME, "file": MODEL_FILE,
                    "sha256": _sha256(folder / MODEL_FILE), "licence": licence,
                    "provenance": f"{len(portraits)} portraits from {built['source']} "
                                  f"(train split){skins}, EM-PCA, "
                                  f"{built['components']} components"}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))

    return install_folder(install_dir(home), write)


def _verified_file(home: Path) -> tuple[Path, dict]:
    folder = install_dir(home)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        path = folder / manifest["file"]
        digest = _sha256(path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MissingAssetError(f"the texture model in {folder} is missing or unreadable: "
                                f"{FIX}") from error
    if manifest.get("format") != FORMAT_VERSION or digest != manifest.get("sha256"):
        raise MissingAssetError(f"the texture model in {folder} is damaged or outdated: {FIX}")
    return path, manifest


def status(home: Path) -> dict:
    """{"name", "installed", "state", "path", "detail"} as the other assets report."""
    folder = install_dir(home)
    if not folder.exists():
        return {"name": NAME, "installed": False, "state": "missing", "path": None,
                "detail": f"not installed: {FIX}"}
    try:
        _, manifest = _verified_file(home)
    except MissingAssetError as error:
        return {"name": NAME, "installed": False, "state": "damaged", "path": str(folder),
                "detail": str(error)}
    return {"name": NAME, "installed": True, "state": "installed", "path": str(folder),
            "detail": f"{manifest['provenance']}; licence: {manifest['licence']}"}


def load_installed(home: Path, device: str = "cpu"):
    """The installed LinearTextureModel, hash checked, or None when not installed."""
    from engine.texture.linear import LinearTextureModel

    if not install_dir(home).exists():
        return None
    path, _ = _verified_file(home)
    return LinearTextureModel.load(path, device)
