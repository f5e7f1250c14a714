"""Stage 2: everything together through the differentiable renderer.

Per step: build the face from the codes, render it textured and lit into each view's
face crop, and minimise pixel L1 inside the rendered mask + landmark loss + priors, plus
whatever extra terms the caller plugs in (the identity, randomised-view identity and
content losses of GANFit, which need a face-recognition network).
"""

from collections.abc import Callable, Collection

import torch

from engine.fit.landmark_stage import LandmarkObjective
from engine.fit.losses import landmark_loss, landmark_weights, masked_l1, robust_weights
from engine.fit.presets import Preset
from engine.fit.renderer import ExtraLoss, FaceRenderer, StageTargets
from engine.fit.state import FitState
from engine.fit.texture_model import TextureModel

# Learning rates per unknown (Adam).
RATES = {"identity": 0.02, "expression": 0.01, "rotation": 2e-3, "offset": 1e-3,
         "log_depth": 1e-3, "log_focal": 2e-3, "sh": 0.02, "texture": 0.02}


# held at the landmark stage's values unless the preset's photo_shape is on
SHAPE_UNKNOWNS = ("identity", "expression")


def fit_photometric(
    renderer: FaceRenderer,
    targets: StageTargets,
    state: FitState,
    texture: TextureModel,
    preset: Preset,
    extra: ExtraLoss | None = None,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    anchor: LandmarkObjective | None = None,
    hold: Collection[str] = (),
) -> dict[str, float]:
    """Fit pose, focal, light, the texture latent and (with preset.photo_shape) identity and
    expression to the photos, in place (state.texture must hold `texture`'s latent).

    anchor: the landmark stage's objective; when given, it replaces this stage's own
    landmark term and code priors (preset.w_anchor times it), so the pixels refine the
    landmark stage's shape under the same evidence instead of refitting it to a tighter
    landmark term. hold: unknowns kept at their values in `state` (besides the shape's
    codes without photo_shape)."""
    weights = landmark_weights(targets.landmarks.device)
    terms: dict[str, float] = {}
    rates = RATES if preset.photo_shape else {
        k: v for k, v in RATES.items() if k not in SHAPE_UNKNOWNS}
    with state.optimising(rates, hold) as groups:
        optimiser = torch.optim.Adam(groups)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, preset.photo_steps,
                                                              eta_min=1e-4)
        for step in range(preset.photo_steps):
            optimiser.zero_grad()
            albedo = texture.decode(state.texture)
            rendered = renderer.render(state, albedo, background=targets.photos)
            losses = {
                "pixel": preset.w_pixel
                * masked_l1(rendered.images, targets.photos, rendered.mask.detach()
                            * robust_weights(rendered.images, targets.photos)).mean(),
                "texture_prior": preset.w_texture_prior * texture.prior(state.texture),
            }
            if anchor is not None:
                losses["landmark"] = preset.w_anchor * anchor(state)["total"]
            else:
                losses |= {
                    "landmark": preset.w_landmark * 100.0
                    * landmark_loss(rendered.landmarks, targets.landmarks, weights).mean(),
                    "identity_prior": preset.w_identity_prior * (state.identity**2).sum(),
                    "expression_prior": preset.w_expression_prior
                    * (state.expression**2).sum(-1).mean(),
                }
            if extra is not None:
                losses.update(extra(rendered, state, albedo, step))
            total = torch.stack(list(losses.values())).sum()
            total.backward()
            optimiser.step()
            schedule.step()
            state.constrain_()
            terms = {"total": total.item(), **{k: v.item() for k, v in losses.items()}}
            if on_step is not None:
                on_step(step + 1, preset.photo_steps, terms)
    return terms
