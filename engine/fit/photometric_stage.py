"""Stage 2: everything together through the differentiable renderer.

Per step: build the face from the codes, render it textured and lit into each view's
face crop, and minimise pixel L1 inside the rendered mask + landmark loss + priors, plus
whatever extra terms the caller plugs in (the identity, randomised-view identity and
content losses of GANFit, which need a face-recognition network).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.fit.contour import JawContour
from engine.fit.crop import FaceCrop
from engine.fit.landmark_stage import (
    FACE_VERTICES,
    face_subset,
    inter_ocular,
    landmark_weights,
)
from engine.fit.presets import Preset
from engine.fit.state import FitState
from engine.fit.texture_model import TextureModel
from engine.render import PinholeCamera, render_textured, triangle_neighbours


@dataclass
class StageTargets:
    """What stage 2 compares against, per view (N views, S = render size).

    photos: (N, 3, S, S) face crops in [0, 1]; landmarks: (N, 68, 2) crop pixels;
    crops: the crop window of each view.
    """

    photos: Tensor
    landmarks: Tensor
    crops: list[FaceCrop]


@dataclass
class Rendered:
    """images: (N, 3, S, S); mask: (N, 1, S, S); landmarks: (N, 68, 2) crop pixels."""

    images: Tensor
    mask: Tensor
    landmarks: Tensor


# extra(rendered, state, albedo (1,3,T,T), step) -> named loss terms, already weighted
ExtraLoss = Callable[[Rendered, FitState, Tensor, int], dict[str, Tensor]]


class FaceRenderer:
    """Renders the front face of a fit into the views' crops."""

    def __init__(self, model: FaceModel, crops: list[FaceCrop], atlas: bool = False):
        """atlas: sample textures laid out as the baked skin atlas (the model's UV tiles 0
        and 1 side by side, u halved) instead of the model's own UVs."""
        self.model = model
        self.subset = face_subset(model)
        faces = model.region_triangles("face")
        self.triangles = model.triangles[faces]
        self.triangle_uvs = model.triangle_uvs[faces]
        if atlas:
            self.triangle_uvs = self.triangle_uvs * self.triangle_uvs.new_tensor([0.5, 1.0])
        self.neighbours = triangle_neighbours(self.triangles)
        self.contour = JawContour(model)
        self.crops = crops
        assert int(self.triangles.max()) < FACE_VERTICES

    def crop_camera(self, state: FitState, views: Tensor | None = None) -> PinholeCamera:
        camera = state.camera(views)
        ids = range(len(self.crops)) if views is None else views.tolist()
        pairs = [self.crops[i].intrinsics(camera.focal[k], camera.principal_point[k])
                 for k, i in enumerate(ids)]
        focal, principal = zip(*pairs, strict=True)
        return PinholeCamera(camera.rotation, camera.translation, torch.stack(focal),
                             torch.stack(principal))

    def render(self, state: FitState, texture: Tensor, identity: Tensor | None = None,
               expression: Tensor | None = None, camera: PinholeCamera | None = None,
               sh: Tensor | None = None, background: Tensor | None = None) -> Rendered:
        """Render the fit (or the fit with some parts replaced, for randomised views).

        texture: (1, 3, T, T) albedo shared by all views.
        """
        expression = state.expression if expression is None else expression
        n = expression.shape[0]
        identity = state.identity_batch(n) if identity is None else identity
        camera = self.crop_camera(state) if camera is None else camera
        sh = state.sh if sh is None else sh
        size = self.crops[0].size
        points = self.model(identity, expression, self.subset)
        vertices_cam = camera.transform(points)
        bg = None if background is None else background.permute(0, 2, 3, 1)
        out = render_textured(vertices_cam, camera, self.triangles, self.triangle_uvs,
                              texture.expand(n, -1, -1, -1), sh, (size, size), background=bg,
                              neighbours=self.neighbours)
        ids = self.contour.select(points.detach(), camera, self.model.landmark_vertices)
        lm = camera.project(points.gather(1, ids[..., None].expand(-1, -1, 3)))[..., :2]
        return Rendered(out.image.permute(0, 3, 1, 2), out.mask.permute(0, 3, 1, 2), lm)


def fit_photometric(
    renderer: FaceRenderer,
    targets: StageTargets,
    state: FitState,
    texture: TextureModel,
    preset: Preset,
    expression_mask: Tensor,
    extra: ExtraLoss | None = None,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Fit identity, expression, pose, focal, light and texture to the photos, in place."""
    weights = landmark_weights(targets.landmarks.device)
    iod = inter_ocular(targets.landmarks)
    params = {
        "identity": (state.identity, 0.02), "expression": (state.expression, 0.01),
        "rotation": (state.rotation, 2e-3), "translation": (state.translation, 0.05),
        "log_focal": (state.log_focal, 2e-3), "sh": (state.sh, 0.02),
        "texture": (texture.latent, 0.02),
    }
    for tensor, _ in params.values():
        tensor.requires_grad_(True)
    optimiser = torch.optim.Adam([{"params": [t], "lr": lr} for t, lr in params.values()])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, preset.photo_steps,
                                                          eta_min=1e-4)
    terms: dict[str, float] = {}
    for step in range(preset.photo_steps):
        optimiser.zero_grad()
        albedo = texture.decode()
        rendered = renderer.render(state, albedo, background=targets.photos)
        mask = rendered.mask.detach()
        pixel = ((rendered.images - targets.photos).abs() * mask).sum() \
            / (3 * mask.sum()).clamp(min=1.0)
        lm_err = ((rendered.landmarks - targets.landmarks) ** 2).sum(-1) / iod[:, None] ** 2
        landmark = (lm_err * weights).sum(-1).mean() / weights.sum()
        losses = {
            "pixel": preset.w_pixel * pixel,
            "landmark": preset.w_landmark * 100.0 * landmark,
            "identity_prior": preset.w_identity_prior * (state.identity**2).sum(),
            "expression_prior": preset.w_expression_prior * (state.expression**2).sum(-1).mean(),
            "texture_prior": preset.w_texture_prior * texture.prior(),
        }
        if extra is not None:
            losses.update(extra(rendered, state, albedo, step))
        total = sum(losses.values())
        total.backward()
        state.expression.grad *= expression_mask
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            state.expression.clamp_(0.0, 1.0)
        terms = {"total": total.item(), **{k: v.item() for k, v in losses.items()}}
        if on_step is not None:
            on_step(step + 1, preset.photo_steps, terms)
    for tensor, _ in params.values():
        tensor.requires_grad_(False)
    return terms
