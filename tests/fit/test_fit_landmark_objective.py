"""The landmark stage's objective (landmark_stage.landmark_objective): its expression prior."""

import torch
from synthetic_scene import make_scene

from engine.facemodel.ict import SIDEWAYS_EXPRESSIONS
from engine.fit.landmark_stage import landmark_objective


def test_sideways_expressions_get_their_own_prior(face_model):
    """With sideways_sigma 0.05 a weight on mouthLeft costs (0.2 / 0.05)^2 = 16 times what
    the shared 0.2 prior charges, and the other expressions cost the same as without it."""
    scene = make_scene(face_model, seed=3, expressions={}, yaw=10, size=256)
    names = face_model.expression_names
    args = (face_model, scene.landmarks, scene.truth.log_focal.exp(),
            scene.truth.expression_mask)

    def prior(state, **options) -> float:
        with torch.no_grad():
            return float(landmark_objective(*args, **options)(state)["prior"])

    def with_weight(name: str) -> object:
        state = type(scene.truth)(**{k: v.clone() for k, v in vars(scene.truth).items()})
        state.identity.zero_()
        state.expression.zero_()
        state.expression[0, names.index(name)] = 0.1
        return state

    for name in SIDEWAYS_EXPRESSIONS:
        state = with_weight(name)
        assert abs(prior(state, sideways_sigma=0.05) / prior(state) - 16.0) < 1e-3, name
    smile = with_weight("mouthSmile_L")
    assert abs(prior(smile, sideways_sigma=0.05) - prior(smile)) < 1e-9
