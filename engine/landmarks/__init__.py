"""Face detection and 68-point landmarks (iBUG / Multi-PIE order), with pluggable backends.

from engine.landmarks import get_detector, select_face
detector = get_detector("mediapipe")       # or "fan"
face, notes = select_face(detector.detect(rgb), (w, h), source="photo.jpg")
"""

from engine.landmarks.base import (
    IBUG_GROUPS,
    DetectedFace,
    LandmarkDetector,
    available_detectors,
    get_detector,
    inter_ocular_distance,
    landmark_error_by_group,
    select_face,
)

__all__ = [
    "IBUG_GROUPS",
    "DetectedFace",
    "LandmarkDetector",
    "available_detectors",
    "get_detector",
    "inter_ocular_distance",
    "landmark_error_by_group",
    "select_face",
]
