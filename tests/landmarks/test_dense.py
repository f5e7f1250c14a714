"""The MediaPipe-to-ICT dense correspondence (engine/landmarks/dense.py, built by
scripts/register_mediapipe.py): on the surface, mirror-consistent, and agreeing with the
68 points the two meshes already share."""

import numpy as np
import pytest
import torch

from engine.landmarks.dense import dense_correspondence, read_table
from engine.landmarks.mediapipe_mesh import MEDIAPIPE_TO_IBUG68


@pytest.fixture(scope="module")
def surface(face_model) -> np.ndarray:
    """(468, 3) cm: every mesh point placed on ICT's neutral surface."""
    full = dense_correspondence(include_outline=True)
    return full.surface(face_model.neutral[None].double())[0].numpy()


def test_points_lie_on_front_face_triangles(face_model):
    full = dense_correspondence(include_outline=True)
    assert full.vertices.shape == (468, 3)
    assert np.allclose(full.barycentric.sum(1), 1.0, atol=1e-5)
    assert (full.barycentric >= -1e-6).all()
    triangles = {tuple(sorted(t)) for t in face_model.triangles[
        face_model.region_triangles("face")].tolist()}
    assert all(tuple(sorted(v)) in triangles for v in full.vertices.tolist())


def test_registered_mesh_within_3mm_of_the_surface():
    """The registered canonical mesh (before projection) is within 3 mm of ICT's surface:
    a bad alignment or warp shows here first."""
    distance_mm = np.array(read_table()["warp_distance_cm"]) * 10.0
    assert distance_mm.shape == (468,)
    assert distance_mm.max() < 3.0


def test_mirror_pairs_stay_mirrored(surface):
    mirror = np.array(read_table()["mirror"])
    assert (mirror[mirror] == np.arange(len(mirror))).all()
    mirrored = surface * np.array([-1.0, 1.0, 1.0])
    assert np.linalg.norm(mirrored - surface[mirror], axis=1).max() * 10 < 1.0


def test_shared_landmarks_land_on_ict_landmarks(face_model, surface):
    """MediaPipe's points of the 68-point table land near ICT's own landmark vertices
    (mean under 1.5 mm, none over 3 mm), so the dense points mean what the 68 mean."""
    pairs = np.array([(e[0], e[-1]) for e in MEDIAPIPE_TO_IBUG68])
    ours = 0.5 * (surface[pairs[:, 0]] + surface[pairs[:, 1]])
    ict = face_model.neutral[face_model.landmark_vertices].double().numpy()
    error_mm = np.linalg.norm(ours - ict, axis=1) * 10
    assert error_mm.mean() < 1.5
    assert error_mm.max() < 3.0


def test_outline_is_not_fitted():
    fitted = dense_correspondence()
    assert not set(read_table()["outline"]) & set(fitted.points.tolist())
    assert len(fitted.points) == 468 - len(read_table()["outline"])


def test_surface_follows_the_shape(face_model):
    """Points move with the mesh they are given (batch of two shapes)."""
    fitted = dense_correspondence()
    base = face_model.neutral[None]
    moved = torch.cat([base, base + torch.tensor([1.0, 2.0, 3.0])])
    points = fitted.surface(moved)
    assert torch.allclose(points[1] - points[0], torch.tensor([1.0, 2.0, 3.0]), atol=1e-4)


@pytest.mark.slow
def test_table_is_what_the_script_builds(face_model):
    """Re-running the registration reproduces the stored table (about a minute)."""
    import importlib.util
    from pathlib import Path

    from engine.assets import ict_facekit
    from engine.paths import ganfit_home

    script = Path(__file__).resolve().parents[2] / "scripts" / "register_mediapipe.py"
    spec = importlib.util.spec_from_file_location("register_mediapipe", script)
    registration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(registration)
    mesh = registration.DEFAULT_MESH
    if not Path(mesh).is_file():
        pytest.skip(f"no MediaPipe canonical mesh at {mesh}")
    table = registration.register(registration.read_obj_vertices(mesh),
                                  ict_facekit.load_arrays(ganfit_home()))
    stored = read_table()
    assert table["vertices"] == stored["vertices"]
    assert np.allclose(table["barycentric"], stored["barycentric"], atol=1e-5)
