"""Is the detected face a photo of a real face? Notes for result.json when it may not be.

The landmark detectors also fire on drawings, cartoons and flat renders, and the fit then
happily fits them. Photos never have large areas of exactly one colour: sensor noise,
skin texture and compression keep neighbouring pixels apart. Drawings do. So the share of
"flat" pixels (3x3 neighbourhood standard deviation under half a grey level) inside the
inner face (the box around the eyes, nose and mouth landmarks) separates them. Measured
on 2026-12-01 (tests/test_plausibility.py repeats the extremes): skimage's
astronaut and 12 congress portraits 0.000-0.014 (also as JPEG quality 15, or upscaled
4x from 128 px); drawn faces 0.57-0.92 (plain, blurred, JPEG quality 30 or 75).
"""

from __future__ import annotations

import numpy as np

from engine.landmarks import DetectedFace

FLAT_SHARE_NOTE = 0.3  # inner-face share of flat pixels from which a note is written
FLAT_STD = 0.5  # grey levels (0..255): a neighbourhood this uniform is "flat"
LOW_SCORE_NOTE = 0.6  # detector confidence under which a note is written
_INNER_FACE = slice(36, 68)  # eyes, nose and mouth landmarks (iBUG 68)


def flat_share(rgb: np.ndarray, landmarks68: np.ndarray) -> float:
    """rgb (H, W, 3) uint8, landmarks68 (68, 2) pixels -> share in [0, 1] of the inner
    face's pixels whose 3x3 neighbourhood is flat."""
    h, w = rgb.shape[:2]
    inner = landmarks68[_INNER_FACE]
    x0, y0 = np.clip(np.floor(inner.min(0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(inner.max(0)).astype(int) + 1, 1, [w, h])
    grey = rgb[max(y0 - 1, 0):y1 + 1, max(x0 - 1, 0):x1 + 1].astype(np.float64).mean(axis=2)
    if min(grey.shape) < 3:
        return 0.0
    windows = np.lib.stride_tricks.sliding_window_view(grey, (3, 3))
    return float((windows.std(axis=(2, 3)) < FLAT_STD).mean())


def plausibility_notes(rgb: np.ndarray, face: DetectedFace) -> list[str]:
    """Notes for a face that may not be a photo of a real face; [] for an ordinary one.
    rgb: (H, W, 3) uint8, the image `face` was detected in."""
    notes = []
    share = flat_share(rgb, face.landmarks68)
    if share >= FLAT_SHARE_NOTE:
        notes.append(f"the face looks drawn or synthetic ({share:.0%} of it is flat colour; "
                     "photos have almost none): the fit treats it as a real face, check the "
                     "result")
    if face.score < LOW_SCORE_NOTE:
        notes.append(f"the detector is unsure this is a face (confidence {face.score:.2f}): "
                     "check the result")
    return notes
