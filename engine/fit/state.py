"""The fitted unknowns: one identity for all photos, per-photo expression, pose, camera and
light. Kept as plain leaf tensors so each stage picks which ones its optimiser moves."""

from dataclasses import dataclass

import torch
from torch import Tensor

from engine.render import PinholeCamera, axis_angle_to_matrix
from engine.render.shading import SH_UNIFORM_LIGHT


@dataclass
class FitState:
    """N views, K identity modes, E expressions.

    identity: (K,) shared by all views. expression: (N, E) blendshape weights in [0, 1].
    rotation: (N, 3) axis-angle, model to camera. translation: (N, 3) cm.
    log_focal: (N,) log of fx = fy in pixels of the view's working image.
    principal_point: (N, 2) pixels (fixed at the image centre).
    sh: (N, 9, 3) spherical-harmonics light, camera space.
    """

    identity: Tensor
    expression: Tensor
    rotation: Tensor
    translation: Tensor
    log_focal: Tensor
    principal_point: Tensor
    sh: Tensor

    @classmethod
    def initial(cls, num_views: int, num_identity: int, num_expressions: int,
                image_sizes: list[tuple[int, int]], device: torch.device) -> "FitState":
        """Mean face, neutral expression, uniform white light, centred principal points;
        pose and focal are set by the landmark stage's closed-form start."""
        sh = torch.zeros(num_views, 9, 3, device=device)
        sh[:, 0] = SH_UNIFORM_LIGHT
        principal = torch.tensor([[(w - 1) / 2.0, (h - 1) / 2.0] for h, w in image_sizes],
                                 device=device)
        focal = torch.tensor([1.2 * max(h, w) for h, w in image_sizes], device=device)
        return cls(
            identity=torch.zeros(num_identity, device=device),
            expression=torch.zeros(num_views, num_expressions, device=device),
            rotation=torch.zeros(num_views, 3, device=device),
            translation=torch.zeros(num_views, 3, device=device),
            log_focal=focal.log(),
            principal_point=principal,
            sh=sh,
        )

    def camera(self, views: slice | Tensor | None = None) -> PinholeCamera:
        index = slice(None) if views is None else views
        focal = self.log_focal[index].exp()
        return PinholeCamera(
            rotation=axis_angle_to_matrix(self.rotation[index]),
            translation=self.translation[index],
            focal=torch.stack([focal, focal], dim=-1),
            principal_point=self.principal_point[index],
        )

    def identity_batch(self, num_views: int | None = None) -> Tensor:
        """(N, K): the shared identity repeated per view."""
        n = self.expression.shape[0] if num_views is None else num_views
        return self.identity[None].expand(n, -1)

    def tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
