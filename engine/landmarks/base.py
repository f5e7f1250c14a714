"""The landmark-detector interface every backend implements, and face selection.

A backend turns an RGB image into a list of `DetectedFace`, largest first, with the 68
iBUG / Multi-PIE landmarks in pixels of the image it was given (OpenCV convention: pixel
centres at integer coordinates, x right, y down). Backends are looked up by name through
`get_detector`, which imports them lazily so that an unused backend (and its heavy
dependencies) is never loaded.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from engine.errors import BadInputError, NoFaceError

# iBUG 68 groups (0-based, half-open), shared by tests, metrics and the fitter.
IBUG_GROUPS: dict[str, tuple[int, int]] = {
    "jaw": (0, 17),
    "brows": (17, 27),
    "nose": (27, 36),
    "eyes": (36, 48),
    "mouth": (48, 68),
}
RIGHT_EYE = slice(36, 42)  # subject's right eye: on the image's left in a frontal photo
LEFT_EYE = slice(42, 48)

# Below this inter-ocular distance (pixels of the original photo) a 68-point fit is coarse:
# a one-pixel landmark error is already ~2.5% of the eye distance.
MIN_GOOD_IOD_PX = 40.0


@dataclass
class DetectedFace:
    """One face found in an image.

    landmarks68: (68, 2) float64, pixels of the detector's input image, iBUG order.
    box: (4,) float64 x0, y0, x1, y1 in the same pixels.
    score: detector confidence in [0, 1] (backend-specific meaning).
    dense: (N, 2) or (N, 3) float64 backend-specific extra points (MediaPipe: 478 mesh
        vertices, x and y in pixels, z in pixels relative to the face centre), or None.
    blendshapes: ARKit blendshape name -> score in [0, 1] (MediaPipe's Face Landmarker:
        "jawOpen", "mouthSmileLeft", ...), or None when the backend gives none.
    """

    landmarks68: np.ndarray
    box: np.ndarray
    score: float = 1.0
    dense: np.ndarray | None = None
    blendshapes: dict[str, float] | None = None

    def __post_init__(self) -> None:
        self.landmarks68 = np.asarray(self.landmarks68, dtype=np.float64)
        self.box = np.asarray(self.box, dtype=np.float64)
        if self.landmarks68.shape != (68, 2):
            raise ValueError(f"landmarks68 must be (68, 2), got {self.landmarks68.shape}")
        if self.box.shape != (4,):
            raise ValueError(f"box must be (4,), got {self.box.shape}")
        if self.dense is not None:
            self.dense = np.asarray(self.dense, dtype=np.float64)

    @property
    def area(self) -> float:
        """Box area in pixels squared: the size used to sort faces."""
        w = max(0.0, float(self.box[2] - self.box[0]))
        h = max(0.0, float(self.box[3] - self.box[1]))
        return w * h

    @property
    def interocular(self) -> float:
        """Distance between the two eye centres (means of points 36-41 and 42-47), pixels."""
        return inter_ocular_distance(self.landmarks68)

    def scaled(self, factor: float) -> DetectedFace:
        """The same face in an image scaled by `factor` (pixel centres stay at integers).

        With centre-aligned resampling, u_big = (u_small + 0.5) * factor - 0.5.
        """

        def s(a: np.ndarray) -> np.ndarray:
            return (a + 0.5) * factor - 0.5

        dense = None
        if self.dense is not None:
            dense = self.dense.copy()
            dense[:, :2] = s(dense[:, :2])
            if dense.shape[1] > 2:
                dense[:, 2:] *= factor
        return DetectedFace(s(self.landmarks68), s(self.box), self.score, dense,
                            self.blendshapes)

    def translated(self, dx: float, dy: float) -> DetectedFace:
        """The same face with all coordinates shifted by (dx, dy) pixels (crop -> full)."""
        off = np.array([dx, dy], dtype=np.float64)
        dense = None
        if self.dense is not None:
            dense = self.dense.copy()
            dense[:, :2] += off
        box = self.box + np.concatenate([off, off])
        return DetectedFace(self.landmarks68 + off, box, self.score, dense, self.blendshapes)


def inter_ocular_distance(landmarks68: np.ndarray) -> float:
    """Eye-centre distance of (68, 2) iBUG landmarks, in their pixels."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return float(np.linalg.norm(lm[RIGHT_EYE].mean(0) - lm[LEFT_EYE].mean(0)))


def landmark_error_by_group(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Mean point-to-point error of (68, 2) `pred` against `ref`, in % of ref's eye distance.

    Keys: the IBUG_GROUPS names, "inner" (all but the jaw) and "all".
    """
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    err = np.linalg.norm(pred - ref, axis=1) / inter_ocular_distance(ref) * 100.0
    out = {g: float(err[a:b].mean()) for g, (a, b) in IBUG_GROUPS.items()}
    out["inner"] = float(err[17:].mean())
    out["all"] = float(err.mean())
    return out


class LandmarkDetector(ABC):
    """A face detector plus 68-point landmarker.

    Subclasses set `name` and implement `detect`. Construction may be expensive (model
    loading); callers keep one instance per process.
    """

    name: str = ""

    @abstractmethod
    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in `rgb` (H, W, 3) uint8, sorted largest box first; [] when none."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release native resources; the default holds none."""


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """Validate a detector input: (H, W, 3) uint8, C-contiguous (what native code expects)."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise BadInputError(f"detector input must be an (H, W, 3) RGB image, got shape {shape}")
    if rgb.dtype != np.uint8:
        raise BadInputError(f"detector input must be uint8, got {rgb.dtype}")
    return np.ascontiguousarray(rgb)


# name -> "module:Class"; modules are imported only when the backend is asked for.
_REGISTRY: dict[str, str] = {
    "mediapipe": "engine.landmarks.mediapipe_mesh:MediaPipeDetector",
    "fan": "engine.landmarks.fan:FanDetector",
}


def available_detectors() -> list[str]:
    """Registered backend names (whether their dependencies are installed is not checked)."""
    return sorted(_REGISTRY)


def get_detector(name: str = "mediapipe", **kwargs: object) -> LandmarkDetector:
    """Construct the backend registered as `name`; kwargs go to its constructor.

    Raises BadInputError for an unknown name.
    """
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise BadInputError(
            f"unknown landmark detector {name!r}; choose one of {', '.join(available_detectors())}"
        ) from None
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(**kwargs)


def select_face(
    faces: list[DetectedFace],
    image_size: tuple[int, int],
    *,
    scale_to_original: float = 1.0,
    source: str = "photo",
) -> tuple[DetectedFace, list[str]]:
    """Pick the face to fit: the largest one, with notes for result.json.

    faces: detections in one image; image_size: (width, height) of that image.
    scale_to_original: original pixels per detector pixel (for the size warning, which
        is about the resolution of the photo, not of a downscaled working copy).
    source: a name for the photo in messages (usually the file name).
    Raises NoFaceError when `faces` is empty.
    """
    if not faces:
        w, h = image_size
        raise NoFaceError(f"no face found in {source} ({w}x{h} px)")
    ordered = sorted(faces, key=lambda f: f.area, reverse=True)
    face = ordered[0]
    notes: list[str] = []
    if len(ordered) > 1:
        notes.append(f"{len(ordered)} faces found; used the largest")
    iod = face.interocular * scale_to_original
    if iod < MIN_GOOD_IOD_PX:
        notes.append(
            f"face is small (eye distance {iod:.0f} px, under {MIN_GOOD_IOD_PX:.0f} px): "
            "the fit will be coarse; a closer or higher-resolution photo works better"
        )
    return face, notes
