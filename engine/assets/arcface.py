"""insightface's ArcFace models in the asset cache: verified download, offline import,
conversion to torch (engine.identity.arcface), status and loading.

The models (buffalo_l's w600k_r50.onnx, antelopev2's glintr100.onnx) are insightface's
pretrained weights, released for NON-COMMERCIAL RESEARCH USE ONLY. They are never
downloaded implicitly: `install` runs only from `python -m engine assets fetch --with
arcface` (or `--from PATH` for an archive already on disk).

The ONNX graph is converted once with onnx2torch and saved as a pickled torch module, so a
fit needs neither onnx nor onnxruntime (onnx2torch's module classes must be importable).
Layout under $GANFIT_HOME:

    identity/arcface/arcface.pt     the converted torch module (torch.save of the module)
    identity/arcface/arcface.json   source, sha256, input normalisation, feature layers
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.assets.install import install_folder
from engine.errors import BadInputError, MissingAssetError

if TYPE_CHECKING:  # torch is imported where a network is built, so `assets list` stays fast
    import torch

    from engine.identity.arcface import ArcFaceNetwork

NAME = "arcface"
RELEASE_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/{pack}.zip"
# Recognition model inside each insightface model pack.
PACK_MODELS = {"buffalo_l": "w600k_r50.onnx", "antelopev2": "glintr100.onnx"}
LICENCE_NOTE = (
    "insightface's pretrained ArcFace models are licensed for non-commercial research use "
    "only (https://github.com/deepinsight/insightface#license); do not use them commercially"
)
INPUT_SIZE = 112
FETCH_COMMAND = "python -m engine assets fetch --with arcface"


def arcface_dir(home: Path) -> Path:
    return Path(home) / "identity" / "arcface"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _verify_zip(path: Path) -> None:
    """A readable zip whose members all pass their CRC check and that holds a known model."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            names = [Path(n).name for n in zf.namelist()]
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
        raise MissingAssetError(f"{path.name} is not a valid zip archive ({error})") from error
    if bad is not None:
        raise MissingAssetError(f"{path.name} is damaged: {bad} fails its CRC check")
    if not set(PACK_MODELS.values()) & set(names):
        raise MissingAssetError(
            f"{path.name} holds no ArcFace model (expected one of {sorted(PACK_MODELS.values())})"
        )


def fetch_arcface(
    dest: Path,
    pack: str = "buffalo_l",
    url: str | None = None,
    sha256: str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Download insightface's `pack` archive into folder `dest`, verified; returns the zip.

    The download goes to a temporary file that is renamed only after the size, the
    optional `sha256`, the zip's CRCs and the presence of the recognition model check out;
    on any failure it is removed and MissingAssetError is raised.
    """
    from engine.assets.download import download

    if pack not in PACK_MODELS:
        raise BadInputError(f"unknown ArcFace pack {pack!r}; choose {', '.join(PACK_MODELS)}")
    url = url or RELEASE_URL.format(pack=pack)
    log(f"ArcFace: {LICENCE_NOTE}")
    log(f"downloading {url}")
    tmp = download(url, Path(dest), log=log)
    try:
        if sha256 is not None and _sha256(tmp) != sha256.lower():
            raise MissingAssetError(f"{url} does not match its expected sha256; not installed")
        _verify_zip(tmp)
        final = Path(dest) / f"{pack}.zip"
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _read_onnx_bytes(path: Path) -> tuple[bytes, str]:
    """The recognition model's bytes and name from an .onnx file, a zip, or a folder."""
    path = Path(path)
    if path.is_dir():
        for name in PACK_MODELS.values():
            hits = sorted(path.rglob(name))
            if hits:
                return hits[0].read_bytes(), name
        zips = sorted(path.glob("*.zip"))
        if zips:
            return _read_onnx_bytes(zips[0])
        raise BadInputError(f"no ArcFace model ({', '.join(PACK_MODELS.values())}) in {path}")
    if not path.is_file():
        raise BadInputError(f"{path} does not exist")
    if path.suffix.lower() == ".onnx":
        return path.read_bytes(), path.name
    if zipfile.is_zipfile(path):
        _verify_zip(path)
        with zipfile.ZipFile(path) as zf:
            for name in PACK_MODELS.values():
                for member in zf.namelist():
                    if Path(member).name == name:
                        return zf.read(member), name
    raise BadInputError(f"{path} is neither an .onnx model nor an insightface model archive")


def import_arcface(path: Path, home: Path, log: Callable[[str], None] = print) -> Path:
    """Convert a local ArcFace .onnx (or insightface zip / folder) into the cache; offline.

    The result is written to a temporary folder and renamed into place, so a failure
    leaves any previous installation untouched and nothing half-written. Returns the folder.
    """
    import torch

    from engine.identity.arcface import convert_onnx

    onnx_bytes, model_name = _read_onnx_bytes(Path(path))
    log(f"ArcFace: {LICENCE_NOTE}")
    log(f"converting {model_name} to torch")
    module, meta = convert_onnx(onnx_bytes)
    meta.update({
        "model": model_name, "source": str(Path(path).resolve()),
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(), "licence": LICENCE_NOTE,
    })

    def write(folder: Path) -> None:
        torch.save(module, folder / "arcface.pt")
        (folder / "arcface.json").write_text(json.dumps(meta, indent=2))

    final = install_folder(arcface_dir(home), write)
    log(f"ArcFace installed in {final}")
    return final


def install(
    source: Path | None,
    home: Path,
    log: Callable[[str], None] = print,
    pack: str = "buffalo_l",
    url: str | None = None,
    sha256: str | None = None,
) -> Path:
    """`assets fetch --with arcface` (source None: download `pack`) or `--from PATH`."""
    if source is not None:
        return import_arcface(Path(source), home, log=log)
    staging = Path(home) / "identity"
    staging.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".arcface-download-", dir=staging))
    try:
        archive = fetch_arcface(work, pack=pack, url=url, sha256=sha256, log=log)
        return import_arcface(archive, home, log=log)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def status(home: Path) -> dict:
    """What `assets list` shows: installed or not, where, which model, the licence."""
    folder = arcface_dir(home)
    meta_path = folder / "arcface.json"
    installed = meta_path.is_file() and (folder / "arcface.pt").is_file()
    if installed:
        meta = json.loads(meta_path.read_text())
        detail = f"{meta['model']} ({meta['embedding_dim']}-D); {LICENCE_NOTE}"
    else:
        detail = f"not installed: {FETCH_COMMAND} (downloads buffalo_l; {LICENCE_NOTE})"
    return {"name": "arcface", "installed": installed, "path": str(folder) if installed else None,
            "detail": detail}



def load_arcface(home: Path, device: str | torch.device = "cpu") -> ArcFaceNetwork | None:
    """The installed ArcFace network, frozen, or None when it is not installed."""
    import torch

    from engine.identity.arcface import ArcFaceNetwork
    folder = arcface_dir(home)
    if not status(home)["installed"]:
        return None
    meta = json.loads((folder / "arcface.json").read_text())
    # Our own cache file, written by import_arcface: a pickled onnx2torch GraphModule.
    module = torch.load(folder / "arcface.pt", map_location="cpu", weights_only=False)
    return ArcFaceNetwork(module, meta).freeze().to(device)
