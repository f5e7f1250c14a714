"""Shared fixtures: the shared ICT-FaceKit copy materialised once per session."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ICT = Path(os.environ.get("GANFIT_SHARED_ASSETS", REPO.parent / "shared/assets/ict-facekit"))


@pytest.fixture(scope="session")
def face_x_model(tmp_path_factory) -> Path:
    """The upstream FaceXModel/ folder, written from the shared compact copy."""
    if not (SHARED_ICT / "materialize.py").is_file():
        pytest.skip(f"no shared ICT-FaceKit copy at {SHARED_ICT}")
    dest = tmp_path_factory.mktemp("ict")
    subprocess.run([sys.executable, str(SHARED_ICT / "materialize.py"), str(dest)], check=True,
                   stdout=subprocess.DEVNULL)
    return dest / "FaceXModel"


@pytest.fixture(scope="session")
def face_model():
    """The installed face model (the README's set-up imports it)."""
    from engine.errors import MissingAssetError
    from engine.facemodel import load_face_model

    try:
        return load_face_model("cpu")
    except MissingAssetError as error:
        pytest.skip(f"face model not installed: {error}")
