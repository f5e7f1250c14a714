"""What the photometric stage renders and compares: the front face of a fit drawn into each
view's face crop, and the crops' targets."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.facemodel.ict import FACE_VERTICES, SKIN_ATLAS_UV_SCALE
from engine.facemodel.model import VertexSubset
from engine.fit.contour import JawContour
from engine.fit.crop import FaceCrop
from engine.fit.state import FitState
from engine.render import PinholeCamera, render_textured, triangle_neighbours


@dataclass
class StageTargets:
    """What the photometric stage compares against, per view (N views, S = render size).

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


def face_subset(model: FaceModel) -> VertexSubset:
    """The model restricted to the front face (vertex ids unchanged)."""
    return model.subset(torch.arange(FACE_VERTICES, device=model.neutral.device))


def project_landmarks(model: FaceModel, points: Tensor, camera: PinholeCamera,
                      contour: JawContour) -> Tensor:
    """(N, 68, 2) pixels of the 68 landmarks of face points (N, V', 3), the jaw points on
    the silhouette as seen by `camera`."""
    ids = contour.select(points.detach(), camera, model.landmark_vertices)
    return camera.project(points.gather(1, ids[..., None].expand(-1, -1, 3)))[..., :2]


class FaceRenderer:
    """Renders the front face of a fit into the views' crops."""

    def __init__(self, model: FaceModel, crops: list[FaceCrop], atlas: bool = False):
        """atlas: sample textures laid out as the baked skin atlas (the model's UV tiles 0
        and 1 side by side) instead of the model's own UVs."""
        self.model = model
        self.subset = face_subset(model)
        faces = model.region_triangles("face")
        self.triangles = model.triangles[faces]
        self.triangle_uvs = model.triangle_uvs[faces]
        if atlas:
            self.triangle_uvs = self.triangle_uvs * self.triangle_uvs.new_tensor(
                SKIN_ATLAS_UV_SCALE)
        self.neighbours = triangle_neighbours(self.triangles)
        self.contour = JawContour(model)
        self.crops = crops

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

        texture: (1, 3, T, T) albedo shared by all views; background: (N, 3, S, S) or None.
        """
        expression = state.expression if expression is None else expression
        n = expression.shape[0]
        identity = state.identity_batch(n) if identity is None else identity
        camera = self.crop_camera(state) if camera is None else camera
        sh = state.sh if sh is None else sh
        size = self.crops[0].size
        points = self.model(identity, expression, self.subset)
        bg = None if background is None else background.permute(0, 2, 3, 1)
        out = render_textured(camera.transform(points), camera, self.triangles,
                              self.triangle_uvs, texture.expand(n, -1, -1, -1), sh,
                              (size, size), background=bg, neighbours=self.neighbours)
        landmarks = project_landmarks(self.model, points, camera, self.contour)
        return Rendered(out.image.permute(0, 3, 1, 2), out.mask.permute(0, 3, 1, 2), landmarks)
