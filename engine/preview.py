"""preview.png: the fit drawn over the first photo, to judge it at a glance."""

import numpy as np
import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.fit.crop import FaceCrop
from engine.fit.renderer import FaceRenderer
from engine.fit.state import FitState


@torch.no_grad()
def preview_image(model: FaceModel, state: FitState, albedo: Tensor, image: np.ndarray
                  ) -> np.ndarray:
    """(H, 2W, 3) uint8: left the textured render over the photo, right the fitted shape in
    plain grey over the photo (where the fit's geometry is easy to judge).

    state: the fit (its first view is drawn); albedo: (3, T, 2T) skin atlas;
    image: (H, W, 3) uint8 working image of the first view."""
    h, w = image.shape[:2]
    full = FaceCrop(0.0, 0.0, float(max(h, w)), max(h, w))
    renderer = FaceRenderer(model, [full], atlas=True)
    photo = full.image(image)[None].to(albedo.device)
    first = state.views(slice(0, 1))
    textured = renderer.render(first, albedo[None], background=photo).images[0]
    grey = torch.full_like(albedo[None, :, :8, :8], 0.7)
    shape = renderer.render(first, grey, background=photo)
    overlay = photo[0] + 0.75 * shape.mask[0] * (shape.images[0] - photo[0])
    panels = torch.cat([textured[:, :h, :w], overlay[:, :h, :w]], dim=2)
    return (panels.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
