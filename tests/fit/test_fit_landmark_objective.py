"""The landmark stage's objective (landmark_stage.landmark_objective): its expression priors."""

import torch
from synthetic_scene import clone_state, make_scene

from engine.facemodel.ict import SIDEWAYS_EXPRESSIONS
from engine.fit.fitter import initial_state
from engine.fit.landmark_stage import fit_landmarks, landmark_objective
from engine.fit.losses import inter_ocular
from engine.fit.state import FitState


def _with_weights(state: FitState, names: list[str], weights: dict[str, float]) -> FitState:
    """A copy of `state` at the average face with only the given expression weights."""
    state = clone_state(state)
    state.identity.zero_()
    state.expression.zero_()
    for name, weight in weights.items():
        state.expression[0, names.index(name)] = weight
    return state


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

    def with_weight(name: str) -> FitState:
        return _with_weights(scene.truth, names, {name: 0.1})

    for name in SIDEWAYS_EXPRESSIONS:
        state = with_weight(name)
        assert abs(prior(state, sideways_sigma=0.05) / prior(state) - 16.0) < 1e-3, name
    smile = with_weight("mouthSmile_L")
    assert abs(prior(smile, sideways_sigma=0.05) - prior(smile)) < 1e-9


def test_laplace_prior_charges_linearly_and_leaves_sideways_gaussian(face_model):
    """expression_laplace b: a weight w costs 2 w / b per effective landmark, twice the
    weight twice the cost; the sideways shapes keep their Gaussian."""
    scene = make_scene(face_model, seed=3, expressions={}, yaw=10, size=256)
    names = face_model.expression_names
    args = (face_model, scene.landmarks, scene.truth.log_focal.exp(),
            scene.truth.expression_mask)

    def prior(weights: dict[str, float], **options) -> float:
        state = _with_weights(scene.truth, names, weights)
        with torch.no_grad():
            return float(landmark_objective(*args, jaw_weight=0.0, **options)(state)["prior"])

    count = 51.0  # effective landmarks with the jaw's 17 at weight 0
    sparse = {"expression_laplace": 0.3, "sideways_sigma": 0.05}
    assert abs(prior({"mouthSmile_L": 0.1}, **sparse) - 2 * 0.1 / 0.3 / count) < 1e-6
    assert abs(prior({"mouthSmile_L": 0.2}, **sparse) / prior({"mouthSmile_L": 0.1}, **sparse)
               - 2.0) < 1e-4
    for name in SIDEWAYS_EXPRESSIONS:
        assert abs(prior({name: 0.1}, **sparse) - prior({name: 0.1}, sideways_sigma=0.05)) < 1e-9


def test_laplace_prior_keeps_a_neutral_face_neutral_under_noisy_landmarks(face_model):
    """Landmarks with 4% (of the eye distance) noise, fitted under the detected-landmark
    noise model. A neutral face: the Gaussian expression prior explains part of the noise
    with several small weights, the sparse prior leaves (almost) all of them at 0. A smiling
    face: the sparse prior's strongest weight is the smile, as large as the Gaussian's."""
    names = face_model.expression_names

    def fitted_weights(expressions: dict[str, float], **options) -> torch.Tensor:
        scene = make_scene(face_model, seed=5, expressions=expressions, yaw=15, size=256)
        g = torch.Generator().manual_seed(0)
        scale = float(inter_ocular(scene.landmarks)[0])
        noisy = scene.landmarks + 0.04 * scale * torch.randn(scene.landmarks.shape, generator=g)
        state = initial_state(face_model, [scene.image], torch.device("cpu"))
        torch.manual_seed(0)
        fit_landmarks(face_model, noisy, state, 200, landmark_sigma=0.15, jaw_weight=0.0,
                      **options)
        return state.expression[0].detach()

    gaussian = fitted_weights({})
    sparse = fitted_weights({}, expression_laplace=0.3)
    assert int((gaussian > 0.02).sum()) >= 3
    assert int((sparse > 0.02).sum()) <= 1
    assert float(sparse.sum()) < 0.5 * float(gaussian.sum())

    smiling = {"mouthSmile_L": 0.8, "mouthSmile_R": 0.8}
    smile = [names.index(n) for n in smiling]
    gaussian = fitted_weights(smiling)
    sparse = fitted_weights(smiling, expression_laplace=0.3)
    assert names[int(sparse.argmax())] in smiling
    assert float(sparse[smile].sum()) >= float(gaussian[smile].sum())
