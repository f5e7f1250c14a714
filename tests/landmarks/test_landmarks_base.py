"""engine.landmarks.base: DetectedFace geometry, face selection notes, the registry, metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import BadInputError, NoFaceError
from engine.imageio import to_original
from engine.landmarks import (
    DetectedFace,
    available_detectors,
    get_detector,
    inter_ocular_distance,
    landmark_error_by_group,
    select_face,
)
from engine.landmarks.mediapipe_mesh import MEDIAPIPE_TO_IBUG68, N_MESH_POINTS, mesh_to_ibug68


def _face(centre: tuple[float, float], iod: float, rng: np.random.Generator) -> DetectedFace:
    """A synthetic face: random landmarks with the two eyes exactly `iod` apart."""
    lm = np.asarray(centre) + rng.normal(0, iod / 3, (68, 2))
    lm[36:42] = lm[36:42] - lm[36:42].mean(0) + (centre[0] - iod / 2, centre[1])
    lm[42:48] = lm[42:48] - lm[42:48].mean(0) + (centre[0] + iod / 2, centre[1])
    half = 1.2 * iod
    box = [centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half]
    return DetectedFace(lm, box, 0.9, dense=np.c_[lm, np.zeros(68)])


def test_detected_face_validates_shapes():
    with pytest.raises(ValueError, match="68, 2"):
        DetectedFace(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="box"):
        DetectedFace(np.zeros((68, 2)), np.zeros(3))


def test_scaled_and_translated_match_working_image_mapping():
    rng = np.random.default_rng(0)
    face = _face((100.0, 80.0), 30.0, rng)
    big = face.scaled(3.5)
    np.testing.assert_allclose(big.landmarks68, to_original(face.landmarks68, 3.5))
    np.testing.assert_allclose(big.dense[:, :2], big.landmarks68)
    assert big.interocular == pytest.approx(3.5 * face.interocular)
    np.testing.assert_allclose(big.scaled(1 / 3.5).landmarks68, face.landmarks68)
    moved = face.translated(10, -4)
    np.testing.assert_allclose(moved.landmarks68 - face.landmarks68, np.tile([10, -4], (68, 1)))
    np.testing.assert_allclose(moved.box - face.box, [10, -4, 10, -4])


def test_select_face_none_raises_no_face():
    with pytest.raises(NoFaceError, match=r"no face found in me.jpg \(640x480 px\)") as info:
        select_face([], (640, 480), source="me.jpg")
    assert info.value.exit_code == 3


def test_select_face_picks_largest_and_notes_count():
    rng = np.random.default_rng(1)
    small, large, mid = (_face((x, 100.0), iod, rng) for x, iod in [(50, 45), (300, 90), (500, 60)])
    face, notes = select_face([small, large, mid], (800, 400))
    assert face is large
    assert notes == ["3 faces found; used the largest"]


def test_select_face_small_face_note_uses_original_resolution():
    rng = np.random.default_rng(2)
    face = _face((100.0, 100.0), 20.0, rng)
    _, notes = select_face([face], (400, 400))
    assert len(notes) == 1 and "face is small (eye distance 20 px" in notes[0]
    _, notes = select_face([face], (400, 400), scale_to_original=3.0)  # 60 px in the photo
    assert notes == []


def test_registry_and_lazy_import():
    assert {"mediapipe", "fan"} <= set(available_detectors())
    with pytest.raises(BadInputError, match="unknown landmark detector 'nope'"):
        get_detector("nope")
    repo = Path(__file__).resolve().parents[2]
    code = (
        "import sys, engine.landmarks; "
        "print(any(m.startswith(('mediapipe', 'engine.landmarks.fan')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert out.stdout.strip() == "False", out.stderr


def test_error_metric_by_group():
    rng = np.random.default_rng(3)
    ref = _face((200.0, 200.0), 50.0, rng).landmarks68
    assert inter_ocular_distance(ref) == pytest.approx(50.0)
    pred = ref.copy()
    pred[48:68] += (3.0, 4.0)  # 5 px = 10% of the eye distance, mouth only
    err = landmark_error_by_group(pred, ref)
    assert err["mouth"] == pytest.approx(10.0)
    assert err["jaw"] == err["eyes"] == 0.0
    assert err["all"] == pytest.approx(10.0 * 20 / 68)
    assert err["inner"] == pytest.approx(10.0 * 20 / 51)


def test_index_table_shape_and_pair_means():
    assert len(MEDIAPIPE_TO_IBUG68) == 68
    flat = [i for entry in MEDIAPIPE_TO_IBUG68 for i in entry]
    assert all(0 <= i < 468 for i in flat)  # face vertices, not iris points
    assert len(set(flat)) == len(flat)  # no vertex serves two landmarks
    mesh = np.random.default_rng(4).normal(size=(2, N_MESH_POINTS, 3))
    lm = mesh_to_ibug68(mesh)
    assert lm.shape == (2, 68, 3)
    np.testing.assert_allclose(lm[:, 27], 0.5 * (mesh[:, 168] + mesh[:, 6]))
    np.testing.assert_allclose(lm[:, 8], mesh[:, 152])
