"""ARKit blendshape scores from MediaPipe's Face Landmarker, as the face model's weights.

The Face Landmarker bundle (`face_landmarker_v2_with_blendshapes.task`, Apache-2.0, from
github.com/google-ai-edge/mediapipe; installed in $GANFIT_HOME/mediapipe-face by
scripts/setup.sh) scores 52 ARKit blendshapes per face. ICT-FaceKit's expressions carry
ARKit's names with "_L"/"_R" for "Left"/"Right" (both mean the subject's side: ICT's
eyeBlink_L and jawLeft move the +x side, the subject's left), and split browInnerUp and
cheekPuff into halves, which both take the one ARKit score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.paths import ganfit_home

TASK_NAME = "face_landmarker_v2_with_blendshapes.task"


def task_path(home: Path | None = None) -> Path:
    """Where the Face Landmarker bundle is installed (it may be absent)."""
    return (home or ganfit_home()) / "mediapipe-face" / TASK_NAME


# ARKit names whose "Left"/"Right" is a direction, not a side: the same name in ICT
DIRECTIONS = ("jawLeft", "jawRight", "mouthLeft", "mouthRight")


def model_name(arkit: str) -> list[str]:
    """ICT names an ARKit blendshape name stands for ("mouthSmileLeft" -> mouthSmile_L;
    "cheekPuff" -> cheekPuff_L and cheekPuff_R; "jawLeft" -> jawLeft)."""
    if arkit in DIRECTIONS:
        return [arkit]
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        if arkit.endswith(side):
            return [arkit[: -len(side)] + suffix]
    return [arkit, arkit + "_L", arkit + "_R"]


def expression_weights(scores: dict[str, float], names: list[str]) -> np.ndarray:
    """(E,) weights in the model's expression order from ARKit scores; names the scores
    do not cover stay 0."""
    index = {name: i for i, name in enumerate(names)}
    out = np.zeros(len(names), dtype=np.float32)
    for arkit, score in scores.items():
        for name in model_name(arkit):
            if name in index:
                out[index[name]] = float(np.clip(score, 0.0, 1.0))
    return out
