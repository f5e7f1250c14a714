"""ICT-FaceKit install: from a folder, a zip, a local HTTP download; damage detected."""

import functools
import http.server
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.assets import ict_facekit
from engine.errors import MissingAssetError
from engine.facemodel import load_face_model
from engine.facemodel.obj import read_obj_vertices

REPO = Path(__file__).resolve().parents[2]
# every test here imports the whole upstream model (158 OBJs) at least once
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archive(face_x_model, tmp_path_factory) -> Path:
    """A zip laid out like GitHub's archive of the pinned commit."""
    path = tmp_path_factory.mktemp("zip") / "ict.zip"
    top = f"ICT-FaceKit-{ict_facekit.COMMIT}"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for file in sorted(face_x_model.iterdir()):
            zf.write(file, f"{top}/FaceXModel/{file.name}")
    return path


@pytest.fixture(scope="module")
def installed_from_folder(face_x_model, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    ict_facekit.install(face_x_model.parent, home, log=lambda _: None)
    return home


def test_import_reproduces_obj_vertices_exactly(installed_from_folder, face_x_model):
    model = load_face_model(home=installed_from_folder).double()
    neutral = read_obj_vertices((face_x_model / "generic_neutral_mesh.obj").read_text())
    np.testing.assert_array_equal(model.neutral.numpy(), neutral.astype(np.float32))
    for name, k, basis in (("identity007", 7, model.identity_basis),
                           ("jawOpen", model.expression_names.index("jawOpen"),
                            model.expression_basis)):
        target = read_obj_vertices((face_x_model / f"{name}.obj").read_text())
        rebuilt = (model.neutral + basis[k]).numpy()
        # stored as float32 positions: equal to the file's values to float32 rounding
        np.testing.assert_allclose(rebuilt, target, rtol=0, atol=4e-6 * np.abs(target).max())
        assert np.abs(target - neutral).max() > 0.3  # the shape really moves vertices


def test_model_topology_and_landmarks(installed_from_folder):
    model = load_face_model(home=installed_from_folder)
    assert model.num_vertices == 26719 and model.num_identity == 100
    assert model.num_expressions == 57 and "jawOpen" in model.expression_names
    assert model.polygon_sizes.shape == (26384,)
    assert int(model.polygon_sizes.sum()) == model.polygon_vertices.shape[0]
    assert model.triangles.shape[0] == int((model.polygon_sizes - 2).sum())
    assert model.region_triangles("face").shape[0] == 2 * 9230  # the face is all quads
    assert model.landmark_vertices.tolist()[:3] == [1225, 1888, 1052]
    assert model.material_names[0] == "M_Face"
    # the nose-tip landmark (iBUG 30) is the most forward of the landmarks
    tips = model.neutral[model.landmark_vertices]
    assert int(tips[:, 2].argmax()) == 30


def test_zip_install_matches_folder_install(archive, installed_from_folder, tmp_path):
    ict_facekit.install(archive, tmp_path, log=lambda _: None)
    a = ict_facekit.load_arrays(tmp_path)
    b = ict_facekit.load_arrays(installed_from_folder)
    for key in b:
        np.testing.assert_array_equal(a[key], b[key])


def test_tampered_file_is_rejected_and_nothing_installed(face_x_model, tmp_path):
    bad = tmp_path / "FaceXModel"
    shutil.copytree(face_x_model, bad)
    path = bad / "identity042.obj"
    path.write_text(path.read_text().replace("v ", "v 1", 1))
    home = tmp_path / "home"
    with pytest.raises(MissingAssetError, match="identity042.obj"):
        ict_facekit.install(bad, home, log=lambda _: None)
    assert not ict_facekit.status(home)["installed"]
    assert not any(p.name.startswith(".ict") for p in home.iterdir())


def _serve(directory: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_download_over_http_installs(archive, tmp_path, monkeypatch):
    server = _serve(archive.parent)
    try:
        monkeypatch.setenv("GANFIT_ICT_FACEKIT_URL",
                           f"http://127.0.0.1:{server.server_port}/{archive.name}")
        ict_facekit.install(None, tmp_path, log=lambda _: None)
    finally:
        server.shutdown()
    assert ict_facekit.status(tmp_path)["installed"]
    assert [p.name for p in tmp_path.iterdir()] == ["ict-facekit"]  # no download left behind


def test_truncated_download_is_detected(archive, tmp_path, monkeypatch, installed_from_folder):
    cut = tmp_path / "served" / "cut.zip"
    cut.parent.mkdir()
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    server = _serve(cut.parent)
    home = tmp_path / "home"
    shutil.copytree(installed_from_folder, home)  # an earlier good install must survive
    try:
        monkeypatch.setenv("GANFIT_ICT_FACEKIT_URL", f"http://127.0.0.1:{server.server_port}/cut.zip")
        with pytest.raises(MissingAssetError):
            ict_facekit.install(None, home, log=lambda _: None)
    finally:
        server.shutdown()
    assert ict_facekit.load_arrays(home)["neutral"].shape == (26719, 3)
    assert sorted(p.name for p in home.iterdir()) == ["ict-facekit"]


def test_damaged_cache_gives_exit_4_naming_the_fix(installed_from_folder, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(installed_from_folder, home)
    model = home / "ict-facekit" / "model.npz"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    env = {"GANFIT_HOME": str(home), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", "from engine.facemodel import load_face_model;"
                          "from engine.cli import main; import sys;"
                          "sys.exit(main(['assets','list','--check','ict-facekit']))"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 4  # the content is checked, not just the manifest
    with pytest.raises(MissingAssetError, match="damaged.*assets fetch"):
        load_face_model(home=home)


def test_cli_check_missing_model_exit_4(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "engine", "assets", "list", "--check", "ict-facekit"],
        cwd=REPO, env={"GANFIT_HOME": str(tmp_path / "empty"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True)
    assert run.returncode == 4
