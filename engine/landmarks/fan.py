"""FAN (face-alignment, Bulat & Tzimiropoulos 2017) as a second 68-point detector backend.

The `face-alignment` package is optional and imported only when this backend is
constructed; its weights are managed by engine.assets.fan (`assets fetch --with fan`).
"""

from __future__ import annotations

import numpy as np

from engine.assets.fan import load_face_alignment
from engine.landmarks.base import DetectedFace, LandmarkDetector, check_rgb


class FanDetector(LandmarkDetector):
    """face-alignment's S3FD detector + 2DFAN4 68-point landmarks (iBUG order)."""

    name = "fan"

    def __init__(self, device: str = "cpu", face_detector: str = "sfd") -> None:
        self._fa = load_face_alignment(device, face_detector)

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        rgb = check_rgb(rgb)
        landmarks, _scores, boxes = self._fa.get_landmarks_from_image(rgb, return_bboxes=True)
        if not landmarks:
            return []
        faces = []
        for points, box in zip(landmarks, boxes, strict=True):
            box = np.asarray(box, dtype=np.float64)
            score = float(box[4]) if box.shape[0] > 4 else 1.0
            faces.append(DetectedFace(np.asarray(points)[:, :2], box[:4], min(max(score, 0), 1)))
        return sorted(faces, key=lambda f: f.area, reverse=True)


