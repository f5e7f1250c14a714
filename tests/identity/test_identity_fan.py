"""FAN backend: the messages when face-alignment or its weights are missing, and the adapter."""

from __future__ import annotations

import sys
import types
import urllib.error

import numpy as np
import pytest

from engine.assets.fan import FETCH_COMMAND
from engine.errors import MissingAssetError
from engine.landmarks import get_detector
from engine.landmarks.fan import FanDetector


@pytest.fixture()
def no_face_alignment(monkeypatch):
    monkeypatch.setitem(sys.modules, "face_alignment", None)  # import raises ImportError


def _fake_package(monkeypatch, factory) -> None:
    """Stand-in for the third-party package's API (it is not installed in the test venv)."""
    module = types.ModuleType("face_alignment")
    module.LandmarksType = types.SimpleNamespace(TWO_D=1)
    module.FaceAlignment = factory
    monkeypatch.setitem(sys.modules, "face_alignment", module)


def test_missing_package_names_the_pip_command(no_face_alignment):
    with pytest.raises(MissingAssetError) as info:
        get_detector("fan")
    message = str(info.value)
    assert "pip install face-alignment" in message and FETCH_COMMAND in message
    assert "checkpoints" in message  # where the weights go
    assert info.value.exit_code == 4


def test_offline_without_weights_names_the_fetch_command(monkeypatch):
    def offline(*_args, **_kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    _fake_package(monkeypatch, offline)
    with pytest.raises(MissingAssetError, match="assets fetch --with fan"):
        FanDetector()


def test_detections_become_faces_largest_first(monkeypatch):
    small = np.column_stack([np.linspace(10, 40, 68), np.linspace(10, 30, 68)])
    large = small * 3 + 50

    class Fake:
        def __init__(self, landmarks_type, **kwargs):
            assert landmarks_type == 1 and kwargs["device"] == "cpu"

        def get_landmarks_from_image(self, image, return_bboxes=False):
            assert image.shape == (200, 300, 3) and return_bboxes
            boxes = [np.array([5, 5, 45, 45, 0.9]), np.array([40, 40, 200, 180, 0.99])]
            return [small, large], None, boxes

    _fake_package(monkeypatch, Fake)
    faces = FanDetector().detect(np.zeros((200, 300, 3), np.uint8))
    assert [f.box.tolist() for f in faces] == [[40, 40, 200, 180], [5, 5, 45, 45]]
    np.testing.assert_array_equal(faces[0].landmarks68, large)
    assert faces[0].score == pytest.approx(0.99)
