"""The fitted unknowns, owned in one place.

One identity for all photos; per photo expression, pose, camera and light; the texture
model's latent. Every unknown is a plain leaf tensor that stays in the state for the whole
fit: a stage asks `optimising(rates)` for the ones it moves (and gets them back frozen
afterwards), so no stage swaps tensors in or out. A new unknown is one more field here.
"""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from engine.render import PinholeCamera, axis_angle_to_matrix
from engine.render.shading import SH_UNIFORM_LIGHT

# Focal length a fit starts from, as a multiple of the photo's long side (about a 43 mm
# full-frame lens; portraits are shot between 35 and 85 mm).
START_FOCAL_PER_SIDE = 1.2


def start_focal(image_sizes: list[tuple[int, int]], device: torch.device | str) -> Tensor:
    """(N,) the focal length (pixels) a fit starts from for images of (H, W) sizes, when the
    photo does not say: START_FOCAL_PER_SIDE x the long side."""
    return torch.tensor([START_FOCAL_PER_SIDE * max(h, w) for h, w in image_sizes],
                        device=device)


@dataclass
class FitState:
    """N views, K identity modes, E expressions.

    identity: (K,) shared by all views. expression: (N, E) blendshape weights in [0, 1].
    rotation: (N, 3) axis-angle, model to camera.
    offset: (N, 2) the model origin's camera-space x / z and y / z.
    log_depth: (N,) log of the model origin's camera-space z, cm.
    log_focal: (N,) log of fx = fy in pixels of the view's working image.
    principal_point: (N, 2) pixels (fixed at the image centre, never optimised).
    sh: (N, 9, 3) spherical-harmonics light, camera space.
    texture: the texture model's latent (shape set by the model; (0,) until a stage sets it).
    expression_mask: (E,) 1 for expressions the fit may move (fixed, not an unknown).
    The camera is parametrised by rotation, log depth, offset and log focal because these
    are of similar scale for the optimiser; `translation` is derived.
    """

    identity: Tensor
    expression: Tensor
    rotation: Tensor
    offset: Tensor
    log_depth: Tensor
    log_focal: Tensor
    principal_point: Tensor
    sh: Tensor
    texture: Tensor
    expression_mask: Tensor

    @classmethod
    def initial(cls, num_views: int, num_identity: int, expression_mask: Tensor,
                image_sizes: list[tuple[int, int]], device: torch.device | str) -> "FitState":
        """Mean face, neutral expression, uniform white light, centred principal points,
        the starting focal; the landmark stage's closed-form start sets the pose."""
        sh = torch.zeros(num_views, 9, 3, device=device)
        sh[:, 0] = SH_UNIFORM_LIGHT
        principal = torch.tensor([[(w - 1) / 2.0, (h - 1) / 2.0] for h, w in image_sizes],
                                 device=device)
        focal = start_focal(image_sizes, device)
        mask = expression_mask.to(device)
        return cls(
            identity=torch.zeros(num_identity, device=device),
            expression=torch.zeros(num_views, mask.numel(), device=device),
            rotation=torch.zeros(num_views, 3, device=device),
            offset=torch.zeros(num_views, 2, device=device),
            log_depth=torch.full((num_views,), 4.0, device=device),
            log_focal=focal.log(),
            principal_point=principal,
            sh=sh,
            texture=torch.zeros(0, device=device),
            expression_mask=mask,
        )

    @property
    def num_views(self) -> int:
        return self.expression.shape[0]

    @property
    def translation(self) -> Tensor:
        """(N, 3) cm, model origin in camera space."""
        depth = self.log_depth.exp()[:, None]
        return torch.cat([self.offset * depth, depth], dim=1)

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
        n = self.num_views if num_views is None else num_views
        return self.identity[None].expand(n, -1)

    @contextmanager
    def optimising(self, rates: dict[str, float],
                   hold: Collection[str] = ()) -> Iterator[list[dict]]:
        """Adam-style parameter groups for the unknowns named in `rates` (name -> learning
        rate) but those in `hold` (kept as they are), with gradients enabled for the
        duration; frozen again afterwards. The expression gradient is masked so held
        expressions stay at 0."""
        unknown = {f.name for f in fields(self)} - {"principal_point", "expression_mask"}
        named = set(rates) | set(hold)
        if not named <= unknown:
            raise KeyError(f"not an unknown of the fit: {sorted(named - unknown)}")
        rates = {name: rate for name, rate in rates.items() if name not in hold}
        tensors = [getattr(self, name) for name in rates]
        hooks = []
        for name, tensor in zip(rates, tensors, strict=True):
            tensor.requires_grad_(True)
            if name == "expression":
                hooks.append(tensor.register_hook(lambda g: g * self.expression_mask))
        try:
            yield [{"params": [t], "lr": lr} for t, lr in zip(tensors, rates.values(),
                                                               strict=True)]
        finally:
            for hook in hooks:
                hook.remove()
            for tensor in tensors:
                tensor.requires_grad_(False)
                tensor.grad = None

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project onto the feasible set after an optimiser step: weights in [0, 1]."""
        self.expression.clamp_(0.0, 1.0)

    def views(self, index: slice) -> "FitState":
        """The same fit restricted to some views (shares the identity and texture)."""
        return replace(self, expression=self.expression[index], rotation=self.rotation[index],
                       offset=self.offset[index], log_depth=self.log_depth[index],
                       log_focal=self.log_focal[index],
                       principal_point=self.principal_point[index], sh=self.sh[index])
