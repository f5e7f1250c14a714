"""insightface's ArcFace as a torch module: download, import, convert, load.

The models (buffalo_l's w600k_r50.onnx, antelopev2's glintr100.onnx) are insightface's
pretrained weights, released for NON-COMMERCIAL RESEARCH USE ONLY. They are never
downloaded implicitly: `install_arcface` runs only from `python -m engine assets fetch
--with arcface` (or `--from PATH` for an archive already on disk).

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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import BadInputError, MissingAssetError
from engine.identity.base import IdentityNetwork

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


def _input_normalisation(model) -> tuple[float, float]:
    """insightface's rule (model_zoo/arcface_onnx.py): a graph that starts with Sub/Mul
    normalises inside, so it takes raw 0..255 pixels; otherwise (x - 127.5) / 127.5."""
    ops = [node.op_type for node in model.graph.node[:8]]
    if any(op in ("Sub", "Mul") for op in ops):
        return 0.0, 1.0
    return 127.5, 127.5


def _check_graph(model) -> None:
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise MissingAssetError(f"the ArcFace ONNX graph is invalid: {error}") from error
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) != 4 or shape[1:] != [3, INPUT_SIZE, INPUT_SIZE]:
        raise MissingAssetError(f"the ArcFace model takes input {shape}, not (N, 3, 112, 112)")


def _add_feature_layers(module: nn.Module) -> list[str]:
    """Names of the residual additions that end each resolution (the stage outputs).

    A probe forward records every 4-D output of an Add; for each spatial size below the
    input's, the last one is kept: for iresnet50 the outputs of its four stages at 56, 28,
    14 and 7 pixels.
    """
    from onnx2torch.node_converters.binary_math_operations import OnnxBinaryMathOperation

    seen: list[tuple[str, int]] = []
    hooks = []
    for name, sub in module.named_modules():
        if isinstance(sub, OnnxBinaryMathOperation) and sub.math_op_function is torch.add:
            def hook(_m, _i, out, name=name):
                if out.ndim == 4:
                    seen.append((name, out.shape[-1]))
            hooks.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    finally:
        for h in hooks:
            h.remove()
    last: dict[int, str] = {}
    for name, size in seen:
        if size < INPUT_SIZE:
            last[size] = name
    return [last[s] for s in sorted(last, reverse=True)]


def _convert(onnx_bytes: bytes) -> tuple[nn.Module, dict]:
    """ONNX bytes -> (torch module, metadata); checks the conversion against onnxruntime."""
    import onnx
    from onnx2torch import convert

    try:
        model = onnx.load_from_string(onnx_bytes)
    except Exception as error:  # onnx raises DecodeError and others on garbage
        raise MissingAssetError(
            f"the ArcFace model is not a readable ONNX file ({error})"
        ) from error
    _check_graph(model)
    mean, std = _input_normalisation(model)
    module = convert(model).eval()
    probe = np.random.default_rng(0).uniform(-1, 1, (2, 3, INPUT_SIZE, INPUT_SIZE))
    probe = probe.astype(np.float32)
    with torch.no_grad():
        out = module(torch.from_numpy(probe)).numpy()
    if out.ndim != 2 or not np.isfinite(out).all():
        raise MissingAssetError(f"the converted ArcFace model gives output {out.shape}")
    max_err = None
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None:
        session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        ref = session.run(None, {session.get_inputs()[0].name: probe})[0]
        max_err = float(np.abs(ref - out).max() / max(np.abs(ref).max(), 1e-12))
        if max_err > 1e-4:
            raise MissingAssetError(
                f"ONNX-to-torch conversion differs from onnxruntime by {max_err:.2e}"
            )
    meta = {
        "input_size": INPUT_SIZE, "input_mean": mean, "input_std": std,
        "embedding_dim": int(out.shape[1]), "feature_layers": _add_feature_layers(module),
        "conversion_max_rel_error": max_err,
    }
    return module, meta


def import_arcface(path: Path, home: Path, log: Callable[[str], None] = print) -> Path:
    """Convert a local ArcFace .onnx (or insightface zip / folder) into the cache; offline.

    The result is written to a temporary folder and renamed into place, so a failure
    leaves any previous installation untouched and nothing half-written. Returns the folder.
    """
    onnx_bytes, model_name = _read_onnx_bytes(Path(path))
    log(f"ArcFace: {LICENCE_NOTE}")
    log(f"converting {model_name} to torch")
    module, meta = _convert(onnx_bytes)
    meta.update({
        "model": model_name, "source": str(Path(path).resolve()),
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(), "licence": LICENCE_NOTE,
    })
    final = arcface_dir(home)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".arcface-", dir=final.parent))
    try:
        torch.save(module, tmp / "arcface.pt")
        (tmp / "arcface.json").write_text(json.dumps(meta, indent=2))
        old = final.with_name(".arcface-old")
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            final.replace(old)
        tmp.replace(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"ArcFace installed in {final}")
    return final


def install_arcface(
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


def arcface_status(home: Path) -> dict:
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


class ArcFaceNetwork(IdentityNetwork):
    """ArcFace on 112x112 chips aligned to insightface's 5-point template.

    `features` returns the outputs of the residual stages (the last residual Add at each
    resolution below 112 px; for iresnet50: 56, 28, 14 and 7 px), recorded by forward
    hooks during the same pass.
    """

    name = "arcface"
    input_size = INPUT_SIZE

    def __init__(self, module: nn.Module, meta: dict) -> None:
        super().__init__()
        self.module = module
        self.embedding_dim = int(meta["embedding_dim"])
        self.model_name = str(meta.get("model", "arcface"))
        self.input_mean = float(meta["input_mean"])
        self.input_std = float(meta["input_std"])
        self.feature_layers = list(meta["feature_layers"])
        self._captured: list[torch.Tensor] | None = None
        modules = dict(module.named_modules())
        for name in self.feature_layers:
            modules[name].register_forward_hook(self._capture)

    def _capture(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if self._captured is not None:
            self._captured.append(output)

    def _run(self, chips: torch.Tensor) -> torch.Tensor:
        self.check_chips(chips)
        # insightface feeds RGB (blobFromImage with swapRB on BGR input), 0..255 scaled.
        return self.module((chips * 255.0 - self.input_mean) / self.input_std)

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        return F.normalize(self._run(chips), dim=1)

    def features(self, chips: torch.Tensor) -> list[torch.Tensor]:
        return self.embed_and_features(chips)[1]

    def embed_and_features(self, chips: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._captured = []
        try:
            embedding = F.normalize(self._run(chips), dim=1)
            return embedding, self._captured
        finally:
            self._captured = None


def load_arcface(home: Path, device: str | torch.device = "cpu") -> ArcFaceNetwork | None:
    """The installed ArcFace network, frozen, or None when it is not installed."""
    folder = arcface_dir(home)
    if not arcface_status(home)["installed"]:
        return None
    meta = json.loads((folder / "arcface.json").read_text())
    # Our own cache file, written by import_arcface: a pickled onnx2torch GraphModule.
    module = torch.load(folder / "arcface.pt", map_location="cpu", weights_only=False)
    return ArcFaceNetwork(module, meta).freeze().to(device)
