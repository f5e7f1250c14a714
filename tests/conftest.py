"""Shared fixtures: the shared ICT-FaceKit copy materialised once per session."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's 512x512 astronaut portrait, (512, 512, 3) uint8."""
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut()


@pytest.fixture()
def save(tmp_path: Path):
    """save(array_or_image, name, **pillow_kwargs) -> Path in a temporary folder."""

    def _save(image: np.ndarray | Image.Image, name: str, **kwargs) -> Path:
        im = Image.fromarray(image) if isinstance(image, np.ndarray) else image
        path = tmp_path / name
        im.save(path, **kwargs)
        return path

    return _save


@pytest.fixture(scope="session")
def model_result(tmp_path_factory, face_model, astronaut_png) -> Path:
    """A result folder written by the engine's own result writer from a known face (a random
    identity with jawOpen 0.3, front camera) without any fit: seconds instead of a
    reconstruction, for the tests of what reads result folders."""
    import math

    import torch

    from engine.fit.fitter import FitResult, initial_state
    from engine.fit.landmark_stage import fitted_landmarks
    from engine.fit.texture_model import CoarseTexture
    from engine.imageio import load_photo
    from engine.render import matrix_to_axis_angle
    from engine.render.camera import FRONT_ROTATION
    from engine.report import RunInfo, View, result_images, result_info, result_mesh
    from engine.result import write_result

    photo = load_photo(astronaut_png)
    state = initial_state(face_model, [photo.rgb], torch.device("cpu"))
    generator = torch.Generator().manual_seed(7)
    # a fit's identity lies well inside the N(0, 1) prior: half its spread here
    state.identity = 0.5 * torch.randn(face_model.num_identity, generator=generator)
    state.expression[0, face_model.expression_names.index("jawOpen")] = 0.3
    state.rotation[0] = matrix_to_axis_angle(torch.tensor(FRONT_ROTATION))
    state.log_depth[0] = math.log(60.0)
    landmarks = fitted_landmarks(face_model, state)
    texture = CoarseTexture(torch.tensor([0.75, 0.55, 0.45]))
    fitted = FitResult(state, texture, torch.zeros(1), torch.full((1,), 0.05), None, None)
    view = View(photo, photo.rgb, 1.0, landmarks[0].numpy(), [])
    run = RunInfo("preview", torch.device("cpu"), 0, "none", {"detect": 0.0})
    seen = torch.zeros(64, 128, dtype=torch.bool)
    seen[8:56, 8:56] = True  # the middle of the face tile "seen"
    albedo = torch.tensor([0.75, 0.55, 0.45])[:, None, None] * (0.8 + 0.2 * seen.float())
    mesh = result_mesh(face_model, state)
    images = result_images(face_model, mesh, [view], state, albedo, seen, maps_size=256)
    out = tmp_path_factory.mktemp("results") / "model_only"
    write_result(out, False, result_info(face_model, [view], fitted, run, texture_model=None,
                                         texture_source="test colour",
                                         maps=images.map_files()), mesh, images)
    return out


@pytest.fixture
def one_thread():
    """Run single-threaded: on a loaded 2-core machine torch's intra-op threads stall each
    other (seen: 10x slower); this test's speed is what matters, not its parallelism."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
