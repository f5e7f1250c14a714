"""ICT-FaceKit (MIT): download or import the upstream OBJ files, verify, convert to a cache.

The upstream `FaceXModel/` folder holds the neutral mesh, 100 identity OBJs and the
expression OBJs, each a full copy of the mesh. They are checked against the SHA-256
hashes recorded in `ict_facekit_files.json` (taken from the pinned upstream commit) and
converted into one `model.npz` that loads in a fraction of a second. The install is
built in a temporary folder and renamed into place, so a failure never leaves a
half-installed model.
"""

import hashlib
import io
import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine.assets.download import download
from engine.assets.install import install_folder
from engine.errors import MissingAssetError

NAME = "ict-facekit"
FORMAT_VERSION = 1
FETCH_COMMAND = "python -m engine assets fetch"
_FILES = json.loads((Path(__file__).with_name("ict_facekit_files.json")).read_text())
COMMIT: str = _FILES["commit"]
FILE_HASHES: dict[str, str] = _FILES["sha256"]
ARCHIVE_URL = f"https://github.com/ICT-VGL/ICT-FaceKit/archive/{COMMIT}.zip"
NEUTRAL_OBJ = "generic_neutral_mesh.obj"
INDICES_JSON = "vertex_indices.json"


def install_dir(home: Path) -> Path:
    return home / NAME


def model_file(home: Path) -> Path:
    return install_dir(home) / "model.npz"


def archive_url() -> str:
    """The pinned upstream archive; `GANFIT_ICT_FACEKIT_URL` overrides it (mirrors, tests)."""
    return os.environ.get("GANFIT_ICT_FACEKIT_URL", ARCHIVE_URL)


def install(source: Path | None, home: Path, log: Callable[[str], None] = print) -> Path:
    """Install the model into `home` from `source` (folder or zip), or download it.

    Returns the installed folder. Raises MissingAssetError on a missing, truncated or
    tampered source; the previous install, if any, is then left as it was.
    """
    home.mkdir(parents=True, exist_ok=True)
    downloaded = None
    if source is None:
        url = archive_url()
        log(f"downloading ICT-FaceKit ({COMMIT[:10]}) from {url}")
        downloaded = download(url, home, log)
        source = downloaded
    try:
        with _open_source(Path(source)) as read:
            arrays = _convert(read, log)
        return _write_install(arrays, home, str(source if downloaded is None else url))
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)


FIX = f"run `{FETCH_COMMAND}` (or `{FETCH_COMMAND} --from PATH` offline)"


def status(home: Path) -> dict:
    """What is installed, its content checked against the SHA-256 recorded at install:
    {"name", "installed", "state" ("installed" | "missing" | "damaged"), "path", "detail"}.
    Hashing model.npz takes about 0.1 s."""
    folder = install_dir(home)
    if not folder.exists():
        return {"name": NAME, "installed": False, "state": "missing", "path": None,
                "detail": f"not installed: {FIX}"}
    try:
        manifest, _ = _read_verified(home)
    except MissingAssetError as error:
        return {"name": NAME, "installed": False, "state": "damaged", "path": str(folder),
                "detail": f"{error}: {FIX}"}
    detail = f"commit {manifest['commit'][:10]}, from {manifest['source']}"
    return {"name": NAME, "installed": True, "state": "installed", "path": str(folder),
            "detail": detail}


def _read_verified(home: Path, verify: bool = True) -> tuple[dict, bytes]:
    """(manifest, model.npz bytes) of an install; MissingAssetError saying what is wrong."""
    folder = install_dir(home)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        commit = manifest["commit"]
        manifest["source"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MissingAssetError(f"{folder / 'manifest.json'} is missing or unreadable") \
            from error
    if manifest.get("format") != FORMAT_VERSION or commit != COMMIT:
        raise MissingAssetError(f"the install in {folder} is of an older format or release")
    try:
        data = model_file(home).read_bytes()
    except OSError as error:
        raise MissingAssetError(f"{model_file(home)} is missing or unreadable") from error
    if verify and hashlib.sha256(data).hexdigest() != manifest.get("model_sha256"):
        raise MissingAssetError(f"{model_file(home)} does not match the SHA-256 recorded at "
                                "install (truncated or modified)")
    return manifest, data


def load_arrays(home: Path, verify: bool = True) -> dict[str, np.ndarray]:
    """The converted arrays of an install; MissingAssetError naming the fix otherwise."""
    folder = install_dir(home)
    if not folder.exists():
        raise MissingAssetError(f"the ICT-FaceKit face model is not installed in {folder}: {FIX}")
    try:
        _, data = _read_verified(home, verify)
    except MissingAssetError as error:
        raise MissingAssetError(f"the installed face model is damaged: {error}; {FIX}") \
            from error
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


@contextmanager
def _open_source(source: Path) -> Iterator[Callable[[str], bytes]]:
    """Yield read(name) -> bytes for FaceXModel files in a folder or zip, hash-checked."""
    if not source.exists():
        raise MissingAssetError(f"{source} does not exist")

    def checked(name: str, data: bytes) -> bytes:
        if hashlib.sha256(data).hexdigest() != FILE_HASHES[name]:
            raise MissingAssetError(
                f"{name} in {source} does not match the pinned ICT-FaceKit release "
                f"(damaged or modified); nothing was installed"
            )
        return data

    if source.is_dir():
        folder = source / "FaceXModel" if (source / "FaceXModel").is_dir() else source
        if not (folder / NEUTRAL_OBJ).is_file():
            raise MissingAssetError(f"{source} holds no FaceXModel/{NEUTRAL_OBJ}")

        def read_file(name: str) -> bytes:
            try:
                return checked(name, (folder / name).read_bytes())
            except OSError as error:
                raise MissingAssetError(f"{folder / name} is missing or unreadable") from error

        yield read_file
        return
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as error:
        raise MissingAssetError(f"{source} is not a readable zip archive ({error})") from error
    with archive:
        members = {
            Path(m).name: m for m in archive.namelist()
            if Path(m).parent.name == "FaceXModel" and Path(m).name in FILE_HASHES
        }

        def read_member(name: str) -> bytes:
            if name not in members:
                raise MissingAssetError(f"{source} has no FaceXModel/{name}")
            try:
                return checked(name, archive.read(members[name]))
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise MissingAssetError(f"{source} is damaged ({error})") from error

        yield read_member


def _convert(read: Callable[[str], bytes], log: Callable[[str], None]) -> dict[str, np.ndarray]:
    """Parse and check every file, then return the arrays that model.npz stores."""
    # imported here: engine.facemodel loads torch, which `assets list` does not need
    from engine.facemodel.obj import read_obj, read_obj_vertices

    indices = json.loads(read(INDICES_JSON))
    mesh = read_obj(read(NEUTRAL_OBJ).decode())
    identity_names = sorted(n[:-4] for n in FILE_HASHES if n.startswith("identity"))
    expression_names = list(indices["expressions"])
    extra = sorted(
        n[:-4] for n in FILE_HASHES
        if n.endswith(".obj") and n != NEUTRAL_OBJ
        and not n.startswith("identity") and n[:-4] not in expression_names
    )
    expression_names += extra
    log(f"converting {len(identity_names)} identity and {len(expression_names)} expression shapes")

    def shapes(names: list[str]) -> np.ndarray:
        out = np.empty((len(names), *mesh.vertices.shape), dtype=np.float32)
        for i, name in enumerate(names):
            out[i] = read_obj_vertices(read(name + ".obj").decode())
        return out

    return {
        "neutral": mesh.vertices.astype(np.float32),
        "identity_shapes": shapes(identity_names),
        "expression_shapes": shapes(expression_names),
        "expression_names": np.array(expression_names),
        "uvs": mesh.uvs.astype(np.float32),
        "polygon_sizes": mesh.polygon_sizes,
        "polygon_vertices": mesh.polygon_vertices,
        "polygon_uvs": mesh.polygon_uvs,
        "polygon_materials": mesh.polygon_materials,
        "material_names": np.array(mesh.material_names),
        "landmark_vertices": np.array(indices["idx_to_landmark_verts"], dtype=np.int64),
        "rigid_vertices": np.array(indices["idx_to_rigid_verts"], dtype=np.int64),
        "fitting_vertices": np.array(indices["idx_to_fitting_verts"], dtype=np.int64),
    }


def _write_install(arrays: dict[str, np.ndarray], home: Path, source: str) -> Path:
    def write(folder: Path) -> None:
        np.savez(folder / "model.npz", **arrays)
        digest = hashlib.sha256((folder / "model.npz").read_bytes()).hexdigest()
        manifest = {
            "name": NAME, "format": FORMAT_VERSION, "commit": COMMIT, "source": source,
            "licence": "MIT", "model_sha256": digest,
            "installed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))

    return install_folder(install_dir(home), write)
