"""The final texture with a texture model: the photo where skin was seen and trusted, the
model's completion everywhere else.

Per view, the photo is unwrapped and de-lit with the fitted light and each texel judged
(`observe.py`); the views merge by confidence. The model's latent is fitted robustly to the
merged albedo (texels it cannot explain lose their trust too: an occluder the colour test
let through), its decoded atlas is upsampled to the texture size, and the two are joined by
Laplacian-pyramid blending: the photo's pores and freckles stay where trusted, the model
fills the unseen side, the mouth, the neck, the ears, the scalp and the back of the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.facemodel import FaceModel
from engine.fit.state import FitState
from engine.paths import ganfit_home
from engine.texture.asset import NAME, load_installed
from engine.texture.atlas import bake_albedo
from engine.texture.blend import laplacian_blend
from engine.texture.linear import LinearTextureModel
from engine.texture.observe import ObservedAlbedo, observe_albedo
from engine.texture.unwrap import push_pull_fill

# The model's residual (colour distance) over which a texel's photo colour is trusted less,
# down to not at all: what the model cannot explain even robustly is not skin.
_GIVE_UP_RESIDUAL = (0.15, 0.3)


@dataclass
class CompletedTexture:
    """albedo: (3, T, 2T) in [0, 1]; trusted: (T, 2T) in [0, 1], how much of each texel
    is the photo's; latent: (K,) the fitted texture-model code."""

    albedo: Tensor
    trusted: Tensor
    latent: Tensor


def merge_views(views: list[ObservedAlbedo]) -> ObservedAlbedo:
    """Confidence-weighted mean of several views' albedo; confidence is the largest one."""
    weights = torch.stack([v.confidence for v in views])  # (N, T, 2T)
    albedo = torch.stack([v.albedo for v in views])
    total = weights.sum(0)
    mean = (albedo * weights[:, None]).sum(0) / total.clamp(min=1e-6)
    return ObservedAlbedo(mean, weights.amax(0), views[0].covered, views[0].features)


def upsample(image: Tensor, size: tuple[int, int]) -> Tensor:
    """(C, h, w) -> (C, H, W) bilinear."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]


def complete_from_observation(texture_model: LinearTextureModel,
                              seen: ObservedAlbedo) -> CompletedTexture:
    """Fit the model to an observed albedo atlas and blend the two (the module doc)."""
    height, width = seen.albedo.shape[-2:]
    size = (height, width)
    latent, residual = texture_model.fit(seen.albedo, seen.confidence)
    lo, hi = _GIVE_UP_RESIDUAL
    explained = ((hi - residual) / (hi - lo)).clamp(0, 1)  # 0 where the model gave up
    explained = torch.where(seen.features, 1.0, upsample(explained[None], size)[0])
    trusted = seen.confidence * explained
    decoded = texture_model.decode(latent).clamp(0, 1)
    completion = upsample(push_pull_fill(decoded, texture_model.covered), size)
    photo = torch.where(trusted > 0, seen.albedo, completion)  # nothing untrusted leaks
    albedo = laplacian_blend(photo, completion, trusted).clamp(0, 1)
    # texels outside the layout take their neighbours' colour (no dark seams when sampled)
    albedo = push_pull_fill(albedo, seen.covered)
    return CompletedTexture(albedo, trusted, latent)


@torch.no_grad()
def complete_albedo(model: FaceModel, texture_model: LinearTextureModel,
                    photos: list[np.ndarray], state: FitState, texture_size: int,
                    fitted_light: bool = True) -> CompletedTexture:
    """The final albedo atlas (3, T, 2T) of the N fitted views of `state`.

    photos: the N working images (H, W, 3) uint8 the state was fitted to; fitted_light:
    divide by the state's SH light, or else estimate one from the skin (a fit that ran
    only the landmark stage).
    """
    device = state.identity.device
    views = []
    for i, photo in enumerate(photos):
        image = torch.from_numpy(np.array(photo)).to(device).permute(2, 0, 1).float() / 255
        views.append(observe_albedo(model, image, state.identity, state.expression[i],
                                    state.camera(slice(i, i + 1)), texture_size,
                                    state.sh[i] if fitted_light else None))
    return complete_from_observation(texture_model.to(device), merge_views(views))


def final_texture(model: FaceModel, photos: list[np.ndarray], state: FitState,
                  texture_size: int) -> tuple[Tensor, Tensor, str | None]:
    """texture.png's albedo (3, T, 2T), texture_mask.png's (T, 2T) bool and the texture
    model's name: with the installed `texture-pca`, the photo's trusted skin blended into
    the model's completion; without it (None), the photo unwrap with mirrored and
    push-pull fill."""
    learned = load_installed(ganfit_home(), str(state.identity.device))
    if learned is None:
        albedo, seen = bake_albedo(model, photos, state, texture_size)
        return albedo, seen, None
    done = complete_albedo(model, learned, photos, state, texture_size)
    return done.albedo, done.trusted > 0.5, NAME
