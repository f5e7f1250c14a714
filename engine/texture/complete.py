"""The final texture with a texture model: the photo where skin was seen and trusted, the
model's completion everywhere else.

Per view, the photo is unwrapped and de-lit with the fitted light and each texel judged
(`observe.py`); the views merge by confidence. The model's latent is fitted robustly to the
merged albedo (texels it cannot explain lose their trust too: an occluder the colour test
let through), its decoded atlas is upsampled to the texture size, and the two are joined by
Laplacian-pyramid blending: the photo's pores and freckles stay where trusted, the model
fills the unseen side, the mouth, the neck, the ears, the scalp and the back of the head.

Any texture model does: the installed linear `texture-pca` (fitted in closed form) or a GAN
checkpoint from `texture-model train` (its latent fitted by Adam on the same objective,
`latent_fit.py`), chosen by `reconstruct --texture-model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.errors import BadInputError, MissingAssetError
from engine.facemodel import FaceModel
from engine.fit.state import FitState
from engine.paths import ganfit_home
from engine.texture.asset import FIX, NAME, load_installed
from engine.texture.atlas import atlas_positions, bake_albedo
from engine.texture.blend import laplacian_blend
from engine.texture.gan import GanTextureModel
from engine.texture.latent_fit import AnyTextureModel, decoded_atlas, fit_texture_model
from engine.texture.observe import ObservedAlbedo, observe_albedo
from engine.texture.unwrap import push_pull_fill

# The model's residual (colour distance) over which a texel's photo colour is trusted less,
# down to not at all: what the model cannot explain even robustly is not skin.
_GIVE_UP_RESIDUAL = (0.15, 0.3)
# The completion's tone is matched to the photo's skin on a coarse grid of the atlas (this
# many cells per atlas height), averaged over the head's surface with Gaussians of these
# widths (cm): the skin broadly (its tone, not the shading the de-lighting left), the
# completion over about half an ear's length (only its lowest frequencies change). The gain
# is bounded, all channels scaled together so its hue is kept: a dark scalp the model
# painted is lifted towards the skin, neither whitened nor turned red.
TONE_GRID = 32
_TONE_SIGMA_CM = (6.0, 3.0)
_TONE_GAIN = (0.5, 2.0)


@dataclass
class CompletedTexture:
    """albedo: (3, T, 2T) in [0, 1]; trusted: (T, 2T) in [0, 1], how much of each texel
    is the photo's; latent: the fitted texture-model code, in the model's own shape ((K,)
    for the linear model, (1, w_dim) for the GAN)."""

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


def match_tone(completion: Tensor, seen: ObservedAlbedo, skin: Tensor,
               positions: Tensor) -> Tensor:
    """The model's completion (3, T, 2T) with its low frequencies set to the photo's skin tone.

    Why: the linear model learns the face from ~160 portraits (mostly light skin) but the
    scalp, ears and back of the head from 14 MakeHuman maps alone, 6 of them dark-skinned
    with short hair painted on the scalp; its mean head is darker and redder than its mean
    face (head/face 0.71, 0.68, 0.66 per channel where the light-skinned maps have 0.99,
    0.95, 0.91), and a latent fitted to a face carries its tone to the head only partly
    (astronaut: 0.78, 0.66, 0.66), so a light face met a darker head at its rim. A global
    gain (the photo's mean skin / the model's decoded mean over the same texels) is ~1 by
    construction: the fit already matches the face. So the tone comes from the photo itself,
    taking head and face to be one skin tone (the light-skinned maps' ratio is within 10% of
    1): on a coarse grid, the gain that brings the completion's colour, averaged over the
    surface around each cell, to the trusted skin's colour averaged the same way (far from
    the face: the nearest skin's). The averages are over 3D positions, not the atlas, so the
    gain is continuous across the atlas's seams; only the completion's lowest frequencies
    change (its ears, hairline and the neck's shading stay the model's); where the photo is
    trusted the gain is ~1.

    skin: (T, 2T) bool, trusted skin texels (features left out: brows and lips are not the
    skin's tone); positions: (h, 2h, 3) the head's neutral surface point at each grid cell's
    centre (0 where uncovered).
    """
    height, width = completion.shape[-2:]
    grid = (int(positions.shape[0]), int(positions.shape[1]))

    def cell_means(image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(C, h, 2h) masked means per cell and (h, 2h) the share of each cell in the mask."""
        share = F.adaptive_avg_pool2d(mask[None, None].float(), grid)[0, 0]
        total = F.adaptive_avg_pool2d((image * mask)[None], grid)[0]
        return (total / share.clamp(min=1e-6)).flatten(1), share.flatten()

    skin_tone, skin_share = cell_means(seen.albedo, skin)  # (3, C), (C,)
    model_tone, model_share = cell_means(completion, seen.covered)
    points = positions.reshape(-1, 3)
    placed = points.abs().sum(-1) > 0  # cells whose centre is on the surface
    sources = placed & (skin_share > 0.25)
    if not bool(sources.any()):
        return completion
    squared = torch.cdist(points, points[placed]).square()  # (C, P) every cell to placed ones
    skin_sigma, model_sigma = _TONE_SIGMA_CM
    # the skin's tone around each cell (softmax: far from the face, the nearest skin's)
    near_skin = torch.softmax((-squared / (2 * skin_sigma**2)).masked_fill(
        ~sources[placed], -torch.inf), dim=1)
    target = skin_tone[:, placed] @ near_skin.T  # (3, C)
    weights = torch.exp(-squared / (2 * model_sigma**2)) * model_share[placed]
    model_low = (model_tone[:, placed] @ weights.T) / weights.sum(1).clamp(min=1e-6)
    gain = target / model_low.clamp(min=1e-3)  # (3, C)
    lo, hi = _TONE_GAIN
    gain = gain * (lo / gain.amin(0)).clamp(min=1) * (hi / gain.amax(0)).clamp(max=1)
    gain = gain.view(3, *grid)
    # cells off the surface take their neighbours' gain
    gain = push_pull_fill(gain, (placed & (model_share > 0)).view(grid))
    return completion * upsample(gain, (height, width))


def complete_from_observation(texture_model: AnyTextureModel, seen: ObservedAlbedo,
                              positions: Tensor) -> CompletedTexture:
    """Fit the model to an observed albedo atlas and blend the two (the module doc).

    positions: (h, 2h, 3) the head's surface point per cell of the tone grid (`match_tone`).
    """
    height, width = seen.albedo.shape[-2:]
    size = (height, width)
    latent, residual = fit_texture_model(texture_model, seen.albedo, seen.confidence)
    lo, hi = _GIVE_UP_RESIDUAL
    explained = ((hi - residual) / (hi - lo)).clamp(0, 1)  # 0 where the model gave up
    explained = torch.where(seen.features, 1.0, upsample(explained[None], size)[0])
    trusted = seen.confidence * explained
    completion = upsample(decoded_atlas(texture_model, latent), size)
    completion = match_tone(completion, seen, (trusted > 0.5) & ~seen.features, positions)
    photo = torch.where(trusted > 0, seen.albedo, completion)  # nothing untrusted leaks
    albedo = laplacian_blend(photo, completion, trusted).clamp(0, 1)
    # texels outside the layout take their neighbours' colour (no dark seams when sampled)
    albedo = push_pull_fill(albedo, seen.covered)
    return CompletedTexture(albedo, trusted, latent)


@torch.no_grad()
def complete_albedo(model: FaceModel, texture_model: AnyTextureModel,
                    photos: list[np.ndarray], state: FitState, texture_size: int,
                    fitted_light: bool = True) -> CompletedTexture:
    """The final albedo atlas (3, T, 2T) of the N fitted views of `state`.

    photos: the N working images (H, W, 3) uint8 the state was fitted to; texture_model:
    on the state's device; fitted_light: divide by the state's SH light, or else estimate
    one from the skin (a fit that ran only the landmark stage).
    """
    device = state.identity.device
    views = []
    for i, photo in enumerate(photos):
        image = torch.from_numpy(np.array(photo)).to(device).permute(2, 0, 1).float() / 255
        views.append(observe_albedo(model, image, state.identity, state.expression[i],
                                    state.camera(slice(i, i + 1)), texture_size,
                                    state.sh[i] if fitted_light else None))
    neutral = model(state.identity[None], torch.zeros_like(state.expression[:1]))[0]
    positions = atlas_positions(model, TONE_GRID, neutral)
    return complete_from_observation(texture_model, merge_views(views), positions)


def load_texture_model(choice: str, device: torch.device | str
                       ) -> tuple[AnyTextureModel | None, str | None]:
    """`--texture-model`'s model and the name result.json gives it: auto, the installed
    texture-pca when there is one, else none; pca, the installed texture-pca (missing:
    MissingAssetError); none, no model (None, None); else the path of a GAN checkpoint, named
    gan-uv:<run folder>/<file> (unreadable: BadInputError)."""
    if choice == "none":
        return None, None
    if choice in ("auto", "pca"):
        learned = load_installed(ganfit_home(), str(device))
        if learned is None and choice == "pca":
            raise MissingAssetError(f"--texture-model pca: {NAME} is not installed: {FIX}")
        return learned, NAME if learned is not None else None
    path = Path(choice)
    try:
        gan = GanTextureModel.load(path, device)
    except ValueError as error:
        raise BadInputError(f"--texture-model: {error}") from error
    return gan, f"{gan.name}:{path.parent.name}/{path.name}"


def final_texture(model: FaceModel, photos: list[np.ndarray], state: FitState,
                  texture_size: int, learned: AnyTextureModel | None
                  ) -> tuple[Tensor, Tensor]:
    """texture.png's albedo (3, T, 2T) and texture_mask.png's (T, 2T) bool: with a texture
    model (`load_texture_model`'s), the photo's trusted skin blended into the model's
    completion; without one (None), the photo unwrap with mirrored and push-pull fill."""
    if learned is None:
        return bake_albedo(model, photos, state, texture_size)
    done = complete_albedo(model, learned, photos, state, texture_size)
    return done.albedo, done.trusted > 0.5
