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


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory) -> Path:
    """skimage's astronaut portrait (public domain) as a PNG file."""
    import skimage.data
    from PIL import Image

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(path)
    return path


@pytest.fixture(scope="session")
def astronaut_result(astronaut_png, tmp_path_factory, face_model) -> Path:
    """A result folder the real engine wrote for the astronaut (preview, CPU), once per
    session; the add-on tests build their scenes from it too."""
    out = tmp_path_factory.mktemp("results") / "astronaut"
    run = subprocess.run(
        [sys.executable, "-m", "engine", "reconstruct", str(astronaut_png), "--out", str(out),
         "--quality", "preview", "--device", "cpu", "--progress", "jsonl"],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    (out.parent / "astronaut.progress.jsonl").write_text(run.stdout)
    return out
