"""The assets the engine knows, with one install/status entry point for the CLI."""

import importlib.util
from collections.abc import Callable
from pathlib import Path

from engine.assets import ict_facekit
from engine.errors import BadInputError


def _dlib_status(home: Path) -> dict:
    del home
    spec = importlib.util.find_spec("face_recognition_models")
    found = spec is not None and importlib.util.find_spec("dlib") is not None
    path = list(spec.submodule_search_locations)[0] if found else None
    return {
        "name": "dlib-face-recognition", "installed": found, "path": path,
        "detail": "PyPI packages dlib-bin + face_recognition_models (CC0 model)" if found
        else "pip install dlib-bin face_recognition_models",
    }


def _arcface_status(home: Path) -> dict:
    from engine.identity import arcface

    return arcface.arcface_status(home)


def _arcface_install(source: Path | None, home: Path, log: Callable[[str], None]) -> Path:
    from engine.identity import arcface

    return arcface.install_arcface(source, home, log=log)


def _dlib_install(source: Path | None, home: Path, log: Callable[[str], None]) -> Path:
    del source
    status = _dlib_status(home)
    if not status["installed"]:
        raise BadInputError("the dlib network comes with the engine's Python packages: "
                            "pip install dlib-bin face_recognition_models")
    log("dlib face-recognition network: already available from its Python package")
    return Path(status["path"])


def _fan_status(home: Path) -> dict:
    from engine.landmarks import fan

    return fan.fan_status(home)


def _fan_install(source: Path | None, home: Path, log: Callable[[str], None]) -> Path:
    from engine.landmarks import fan

    return fan.install_fan(source, home, log)


# name -> (install(source, home, log), status(home)); the first is the default fetch.
ASSETS: dict[str, tuple[Callable, Callable[[Path], dict]]] = {
    ict_facekit.NAME: (ict_facekit.install, ict_facekit.status),
    "arcface": (_arcface_install, _arcface_status),
    "dlib-face-recognition": (_dlib_install, _dlib_status),
    "fan": (_fan_install, _fan_status),
}
DEFAULT = (ict_facekit.NAME,)
