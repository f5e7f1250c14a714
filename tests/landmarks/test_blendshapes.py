"""ARKit blendshape scores -> the model's expression weights, and the Face Landmarker path."""

import numpy as np
import pytest

from engine.landmarks.blendshapes import expression_weights, model_name, task_path


def test_names_map_to_ict_sides_and_halves():
    assert model_name("mouthSmileLeft") == ["mouthSmile_L"]
    assert model_name("eyeBlinkRight") == ["eyeBlink_R"]
    assert set(model_name("cheekPuff")) >= {"cheekPuff_L", "cheekPuff_R"}


def test_every_fitted_model_expression_has_a_score(face_model):
    """Each of the model's 53 ARKit-style names is reached from one of ARKit's 52."""
    arkit = ["browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
             "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
             "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
             "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
             "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
             "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
             "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
             "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft",
             "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
             "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
             "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
             "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft",
             "noseSneerRight", "tongueOut"]
    weights = expression_weights({name: 0.5 for name in arkit}, face_model.expression_names)
    assert (weights[:53] == 0.5).all()
    assert (weights[53:] == 0.0).all()  # PupilDilate, cheekRaiser: not ARKit's


def test_scores_are_clipped():
    w = expression_weights({"jawOpen": 1.3, "mouthClose": -0.1}, ["jawOpen", "mouthClose"])
    assert np.allclose(w, [1.0, 0.0])


def test_face_landmarker_scores_the_astronaut(detector, astronaut):
    if not task_path().is_file():
        pytest.skip(f"Face Landmarker bundle not installed at {task_path()}")
    face = detector.detect(astronaut)[0]
    assert face.dense.shape == (478, 3)
    assert face.blendshapes is not None and len(face.blendshapes) == 51
    assert all(0.0 <= v <= 1.0 for v in face.blendshapes.values())
    # the astronaut smiles with closed lips
    assert face.blendshapes["mouthSmileLeft"] > 0.3 and face.blendshapes["jawOpen"] < 0.2
