"""Stage 2 moves the shape under the landmark stage's own objective (fitter.full_fit's
anchor): without pixels it stays where the landmark stage ended, or, with the detected
identity's gain, at that identity / gain."""

import pytest
import torch
from synthetic_scene import clone_state, make_scene

from engine.fit.fitter import detected_evidence, full_fit, landmark_fit
from engine.fit.landmark_stage import landmark_objective
from engine.fit.presets import get_preset


def _face_shift_mm(model, a, b) -> float:
    """Mean distance (mm) between the neutral front faces of two fits' identities."""
    def face(identity):
        return model(identity[None], torch.zeros(1, model.num_expressions))[0][:9409]

    return float((face(a.identity) - face(b.identity)).norm(dim=-1).mean()) * 10


@pytest.mark.slow
def test_stage_two_keeps_the_landmark_optimum_without_pixels(face_model):
    """With the pixel weight at 0 the anchored stage 2 is the landmark stage's objective
    again (same noise model, same priors): the codes barely move. A stage-2 landmark term
    that disagreed with stage 1 (another noise level, other points) would move them."""
    preset = get_preset("preview", landmark_steps=120, photo_steps=20, render_size=96,
                        w_pixel=0.0, w_texture_prior=0.0)
    scene = make_scene(face_model, seed=5, expressions={"mouthSmile_L": 0.4}, yaw=20, size=256)
    start = landmark_fit(face_model, [scene.image], scene.landmarks, preset)
    evidence = detected_evidence(None, None, None)  # what landmark_fit used
    after = full_fit(face_model, [scene.image], scene.landmarks, clone_state(start), preset,
                     identity="none", evidence=evidence).state
    moved = _face_shift_mm(face_model, after, start)
    print(f"face moved {moved:.3f} mm without pixels")
    assert moved < 0.25  # Adam still steps along the flat directions: ~0.1 mm
    assert (after.expression - start.expression).abs().max() < 0.05


def test_identity_gain_is_the_objective_of_the_scaled_identity(face_model):
    """landmark_objective with identity_gain g at identity x is the plain objective at g x:
    data terms and the identity prior alike (a prior on x itself would pull stage 2's
    rescaled start back towards the average face)."""
    scene = make_scene(face_model, seed=3, expressions={}, yaw=10, size=256)
    state = clone_state(scene.truth)
    args = (face_model, scene.landmarks, state.log_focal.exp(), state.expression_mask)
    scaled = clone_state(state)
    scaled.identity = state.identity * 0.5
    with torch.no_grad():
        gained = landmark_objective(*args, identity_gain=0.5)(state)
        plain = landmark_objective(*args)(scaled)
    for name in ("total", "landmark", "prior"):
        assert torch.allclose(gained[name], plain[name], rtol=1e-5), name
    assert not torch.allclose(gained["total"], landmark_objective(*args)(state)["total"])


@pytest.mark.slow
def test_stage_two_starts_from_the_identity_over_its_gain(face_model):
    """Without pixels, stage 2 with identity_gain 0.5 ends at twice the landmark stage's
    identity: its objective is stationary there, so nothing pulls the rescaled face back."""
    preset = get_preset("preview", landmark_steps=120, photo_steps=20, render_size=96,
                        w_pixel=0.0, w_texture_prior=0.0)
    scene = make_scene(face_model, seed=5, expressions={}, yaw=20, size=256)
    start = landmark_fit(face_model, [scene.image], scene.landmarks, preset)
    after = full_fit(face_model, [scene.image], scene.landmarks, clone_state(start), preset,
                     identity="none", evidence=detected_evidence(None, None, None),
                     identity_gain=0.5).state
    doubled = clone_state(start)
    doubled.identity = start.identity * 2
    moved = _face_shift_mm(face_model, after, doubled)
    print(f"face {moved:.3f} mm from twice the landmark identity, "
          f"{_face_shift_mm(face_model, after, start):.3f} mm from the landmark identity")
    # Adam drifts along the flat directions, which the gain makes flatter: ~0.25 mm; a
    # pull back to the landmark identity would end ~1 mm from twice it
    assert moved < 0.4
    assert _face_shift_mm(face_model, after, start) > 2.5 * moved


def test_stage_two_keeps_held_expressions_and_fits_the_rest(face_model):
    """hold=("expression",) (fitter.DETECTED_STAGE2_HOLD): stage 2 leaves the landmark
    stage's expression weights exactly as they were while the identity still moves; the
    same stage without the hold moves them."""
    preset = get_preset("preview", landmark_steps=60, photo_steps=10, render_size=96)
    scene = make_scene(face_model, seed=5, expressions={"mouthSmile_L": 0.4}, yaw=20, size=256)
    start = landmark_fit(face_model, [scene.image], scene.landmarks, preset)
    evidence = detected_evidence(None, None, None)

    def stage_two(hold: tuple[str, ...]):
        return full_fit(face_model, [scene.image], scene.landmarks, clone_state(start), preset,
                        identity="none", evidence=evidence, hold=hold).state

    held = stage_two(("expression",))
    assert torch.equal(held.expression, start.expression)
    assert _face_shift_mm(face_model, held, start) > 0.01
    assert not torch.equal(stage_two(()).expression, start.expression)
