"""MediaPipe Face Mesh backend: 478 dense points, reduced to the 68 iBUG landmarks.

Why not just `FaceMesh.process(image)`: its built-in BlazeFace short-range detector sees the
whole image at 128x128 and misses any face narrower than roughly 15% of the image (measured:
a 512 px astronaut portrait pasted into a 1024x768 canvas is not found). So detection runs
as a coarse-to-fine search over square windows with both of MediaPipe's detectors (short and
full range), and the mesh is then computed on a crop centred on each detected face, taken
from the full-resolution input, so small faces in large photos get the landmark model's full
192 px input resolution.

Coordinates: MediaPipe normalises by the image extent (x in [0, 1] spans the image edge to
edge), so a pixel coordinate in the OpenCV convention (pixel centres at integers) is
u = x * W - 0.5.

mediapipe is imported lazily (about 0.6 s) when a detector is constructed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.errors import MissingAssetError
from engine.landmarks.base import DetectedFace, LandmarkDetector, check_rgb
from engine.landmarks.blendshapes import task_path

# MediaPipe 478-vertex mesh -> iBUG 68, each entry one vertex or the mean of two.
# Source: Peizhi Yan, "Mediapipe_2_Dlib_Landmarks" (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks,
# 2024), for brows, nose, eyes and mouth. The jaw (0..16) instead uses the 17-vertex lower
# face-oval list that circulates in many MediaPipe projects (127, 234, 132, 58, 172, 150, 149,
# 148, 152, 377, 378, 379, 397, 288, 361, 454, 356): it is mirror-symmetric vertex for vertex
# and spaced along the silhouette like iBUG's contour; on skimage's astronaut it halves the
# jaw error against dlib (5.7% vs 13% of the eye distance; benchmarks/landmark_accuracy.py).
MEDIAPIPE_TO_IBUG68: tuple[tuple[int, ...], ...] = (
    # jaw 0..16, subject's right ear -> chin -> left ear
    (127,), (234,), (132,), (58,), (172,), (150,), (149,), (148,), (152,),
    (377,), (378,), (379,), (397,), (288,), (361,), (454,), (356,),
    # right brow 17..21, left brow 22..26
    (156,), (63,), (105,), (66,), (107,),
    (336,), (296,), (334,), (293,), (383,),
    # nose bridge 27..30, nose base 31..35
    (168, 6), (197, 195), (5,), (4,),
    (98,), (97,), (2,), (326,), (327,),
    # right eye 36..41, left eye 42..47
    (33,), (160,), (158,), (133,), (153,), (144,),
    (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48..59
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lips 60..67
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)  # fmt: skip

# (68, 2) index pairs: a single vertex is listed twice so one mean serves every row.
_PAIRS = np.array([(e[0], e[-1]) for e in MEDIAPIPE_TO_IBUG68], dtype=np.int64)

N_MESH_POINTS = 478  # 468 face vertices + 2 x 5 iris points (refine_landmarks=True)


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """(..., 478, D) MediaPipe mesh points -> (..., 68, D) iBUG landmarks (pair means)."""
    return 0.5 * (mesh[..., _PAIRS[:, 0], :] + mesh[..., _PAIRS[:, 1], :])


@dataclass(frozen=True)
class _Box:
    """A detection in image pixels (OpenCV convention), x0, y0, x1, y1, with its score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def side(self) -> float:
        return max(self.x1 - self.x0, self.y1 - self.y0)

    @property
    def centre(self) -> tuple[float, float]:
        return 0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1)

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


def _overlap(a: _Box, b: _Box) -> float:
    """Intersection over the smaller box: 1 when one box holds the other (a partial face
    seen at a window edge is then merged with the whole face)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / max(1e-9, min(a.area, b.area))


def _suppress(boxes: list[_Box], threshold: float = 0.5) -> list[_Box]:
    """Greedy non-maximum suppression by score (overlap measured by `_overlap`)."""
    kept: list[_Box] = []
    for b in sorted(boxes, key=lambda b: b.score, reverse=True):
        if all(_overlap(b, k) < threshold for k in kept):
            kept.append(b)
    return kept


def _square_crop(rgb: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """(side, side, 3) crop at integer (x0, y0), zero-padded where it leaves the image."""
    h, w = rgb.shape[:2]
    out = np.zeros((side, side, 3), dtype=np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + side), min(h, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


def _resized(rgb: np.ndarray, side: int) -> np.ndarray:
    """Square (S, S, 3) image resized to (side, side, 3) (centre-aligned, bilinear)."""
    if rgb.shape[0] == side:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((side, side), Image.Resampling.BILINEAR))


def _scaled(rgb: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, 3) image scaled by `scale` <= 1 (area-averaging, centre-aligned): (h, w, 3)."""
    if scale >= 1.0:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def _windows(width: int, height: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of square windows of `side` px at stride side/2 covering the image.

    A window larger than the image is centred on it (and padded by `_square_crop`).
    """

    def starts(extent: int) -> list[int]:
        if side >= extent:
            return [(extent - side) // 2]
        n = int(np.ceil((extent - side) / (side / 2))) + 1
        return [int(round(v)) for v in np.linspace(0, extent - side, n)]

    return [(x, y) for y in starts(height) for x in starts(width)]


def _face_landmarker():
    """MediaPipe's Face Landmarker with blendshape output, or None when its bundle is not
    installed (engine.landmarks.blendshapes.task_path)."""
    path = task_path()
    if not path.is_file():
        return None
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        running_mode=vision.RunningMode.IMAGE, num_faces=1, output_face_blendshapes=True)
    return vision.FaceLandmarker.create_from_options(options)


class MediaPipeDetector(LandmarkDetector):
    """Face detection + 478-point mesh with MediaPipe 0.10.21 (offline models in the wheel).

    max_faces: at most this many faces are meshed (largest detections first).
    min_window: smallest search window in pixels; with MediaPipe's detectors finding faces
        down to ~12% of a window, this bounds the smallest face found (~20 px wide).
    min_score: detector confidence threshold.
    """

    name = "mediapipe"
    _detect_input = 320  # window size seen by the detectors (their inputs are 128 and 192)
    _mesh_input = 512  # face crops are resized to this: the face then spans ~230 px > 192
    _crop_factor = 2.2  # crop side / detection box side

    def __init__(self, max_faces: int = 5, min_window: int = 160, min_score: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")  # silence MediaPipe's C++ logging
        try:
            from mediapipe.python.solutions import face_detection, face_mesh
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingAssetError(
                "the MediaPipe landmark detector needs mediapipe==0.10.21: "
                "pip install mediapipe==0.10.21"
            ) from exc
        self.max_faces = max_faces
        self.min_window = min_window
        self._detectors = [
            face_detection.FaceDetection(model_selection=m, min_detection_confidence=min_score)
            for m in (0, 1)  # short range (large faces), full range (small faces)
        ]
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=2,
            refine_landmarks=True,
            min_detection_confidence=min_score,
        )
        self._blendshapes = _face_landmarker()

    def close(self) -> None:
        """Release the MediaPipe graphs."""
        for graph in [*self._detectors, self._mesh]:
            graph.close()
        if self._blendshapes is not None:
            self._blendshapes.close()
            self._blendshapes = None
        self._detectors = []

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in `rgb` (H, W, 3) uint8, largest first; [] when none."""
        rgb = check_rgb(rgb)
        boxes = self.find_boxes(rgb)[: 2 * self.max_faces]  # spare boxes for false positives
        faces = [f for b in boxes if (f := self._mesh_face(rgb, b)) is not None]
        faces = self._dedupe(faces)
        return sorted(faces, key=lambda f: f.area, reverse=True)[: self.max_faces]

    def find_boxes(self, rgb: np.ndarray) -> list[_Box]:
        """Face boxes from a coarse-to-fine window search, in image pixels.

        Levels halve the window from the whole image down to the finest window (the larger
        of `min_window` and 1/8 of the long side, which bounds a 12 MP search to ~200
        windows); the search stops one level after the first level that finds a face, so
        faces of about the largest one's size are all found while a portrait costs ~10
        detector calls. Each level works on one copy of the image scaled so that a window
        is `_detect_input` px.
        """
        h, w = rgb.shape[:2]
        finest = min(max(self.min_window, max(h, w) // 8), max(h, w))
        side = max(h, w)
        boxes: list[_Box] = []
        found_at: int | None = None
        level = 0
        while side >= finest and (found_at is None or level <= found_at + 1):
            scale = min(1.0, self._detect_input / side)
            boxes.extend(self._detect_level(_scaled(rgb, scale), side, scale))
            if boxes and found_at is None:
                found_at = level
            side //= 2
            level += 1
        return sorted(_suppress(boxes), key=lambda b: b.area, reverse=True)

    def _detect_level(self, small: np.ndarray, side: int, scale: float) -> list[_Box]:
        """Detections of both detectors over windows of `side` image px, in image pixels.

        small: the image scaled by `scale` (h, w, 3); its windows are round(side * scale) px.
        """
        h, w = small.shape[:2]
        win = max(1, int(round(side * scale)))
        out = []
        for x0, y0 in _windows(w, h, win):
            window = np.ascontiguousarray(_square_crop(small, x0, y0, win))
            for det in self._detectors:
                for d in det.process(window).detections or []:
                    r = d.location_data.relative_bounding_box
                    # window-normalised -> small-image pixels -> full-image pixels
                    bx0 = (x0 - 0.5 + r.xmin * win + 0.5) / scale - 0.5
                    by0 = (y0 - 0.5 + r.ymin * win + 0.5) / scale - 0.5
                    bw, bh = r.width * win / scale, r.height * win / scale
                    out.append(_Box(bx0, by0, bx0 + bw, by0 + bh, float(d.score[0])))
        return out

    def _mesh_face(self, rgb: np.ndarray, box: _Box) -> DetectedFace | None:
        """Mesh the face in a square crop around `box`; None if the mesh finds no face.

        The crop is taken from the full-resolution input and resized to `_mesh_input`;
        when the crop holds two faces, the one nearest the box centre is kept.
        """
        side = max(8, int(round(box.side * self._crop_factor)))
        cx, cy = box.centre
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        crop = _resized(_square_crop(rgb, x0, y0, side), self._mesh_input)
        result = self._mesh.process(crop)
        best: np.ndarray | None = None
        for lms in result.multi_face_landmarks or []:
            norm = np.array([(p.x, p.y, p.z) for p in lms.landmark], dtype=np.float64)
            # normalised crop coordinates -> image pixels (pixel centres at integers)
            pts = np.empty_like(norm)
            pts[:, 0] = x0 - 0.5 + norm[:, 0] * side
            pts[:, 1] = y0 - 0.5 + norm[:, 1] * side
            pts[:, 2] = norm[:, 2] * side
            d = np.hypot(*(pts[:, :2].mean(0) - (cx, cy)))
            if best is None or d < np.hypot(*(best[:, :2].mean(0) - (cx, cy))):
                best = pts
        if best is None or best.shape[0] != N_MESH_POINTS:
            return None
        lo, hi = best[:, :2].min(0), best[:, :2].max(0)
        return DetectedFace(
            landmarks68=mesh_to_ibug68(best[:, :2]),
            box=np.concatenate([lo, hi]),
            score=float(box.score),
            dense=best,
            blendshapes=self._scores(crop),
        )

    def _scores(self, crop: np.ndarray) -> dict[str, float] | None:
        """ARKit blendshape scores of the face in a mesh crop (the Face Landmarker's
        largest face), or None without the bundle or a face."""
        if self._blendshapes is None:
            return None
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop))
        result = self._blendshapes.detect(image)
        if not result.face_blendshapes:
            return None
        return {c.category_name: float(c.score) for c in result.face_blendshapes[0]
                if not c.category_name.startswith("_")}

    @staticmethod
    def _dedupe(faces: list[DetectedFace]) -> list[DetectedFace]:
        """Drop meshes of the same face reached from two detections (highest score kept)."""
        boxes = [_Box(f.box[0], f.box[1], f.box[2], f.box[3], f.score) for f in faces]
        kept = _suppress(boxes, threshold=0.6)
        return [f for f, b in zip(faces, boxes, strict=True) if any(b is k for k in kept)]
