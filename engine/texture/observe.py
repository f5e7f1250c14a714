"""A photo's de-lit skin albedo in the atlas layout, with a per-texel confidence.

The unwrap of `unwrap.py` samples the photo at each texel of the skin atlas; the shading is
divided out (the fitted SH light when stage 2 ran, or else one estimated here from the skin
itself: an order-2 SH fitted to the trusted skin texels' colour as if the albedo were
constant, normalised to 1 on the cheeks); `confidence.py` says which texels to trust.
Nothing is filled in here: untrusted texels are the texture model's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.render import PinholeCamera, sh_basis, sh_shading
from engine.texture.atlas import skin_atlas_triangles
from engine.texture.confidence import (
    colour_confidence,
    feature_texels,
    geometric_confidence,
    lip_loops,
    mouth_opening_texels,
    reference_texels,
    skin_colour,
    texel_positions,
)
from engine.texture.unwrap import sample_texels

_MIN_COSINE = 0.3
_MIN_SHADING = 0.2
_SH_RIDGE = 1e-2  # pulls the estimated light's second order towards none


@dataclass
class ObservedAlbedo:
    """albedo: (3, T, 2T) de-lit sRGB, 0 where not observed; confidence: (T, 2T) in [0, 1];
    covered: (T, 2T) bool, texels the skin's UV layout covers; features: (T, 2T) bool,
    brows, eyelids and lips (kept from the photo even where no skin model explains them)."""

    albedo: Tensor
    confidence: Tensor
    covered: Tensor
    features: Tensor


def estimate_shading(colour: Tensor, normal: Tensor, skin: Tensor,
                     reference: Tensor) -> Tensor:
    """(M, 3) relative shading of texels from their photo colour (M, 3) and normal (M, 3).

    An order-2 SH light per channel fitted by ridge least squares to the `skin` texels
    (M,) bool as if their albedo were one colour, then scaled to a median of 1 over the
    `reference` texels (so the de-lit albedo keeps the cheeks' photographed colour).
    """
    basis = sh_basis(normal)  # (M, 9)
    if int(skin.sum()) < 50:
        return torch.ones_like(colour)
    a, b = basis[skin].double(), colour[skin].double()
    ridge = torch.full((9,), _SH_RIDGE * len(a), dtype=a.dtype, device=a.device)
    ridge[:4] = 0.0  # ambient and directional terms are free
    light = torch.linalg.solve(a.T @ a + torch.diag(ridge), a.T @ b).to(colour)  # (9, 3)
    shading = basis @ light
    use = reference & skin if int((reference & skin).sum()) >= 20 else skin
    return (shading / shading[use].median(0).values.clamp(min=1e-6)).clamp(min=_MIN_SHADING)


@torch.no_grad()
def observe_albedo(model: FaceModel, photo: Tensor, identity: Tensor, expression: Tensor,
                   camera: PinholeCamera, height: int, sh: Tensor | None = None) -> ObservedAlbedo:
    """The de-lit albedo atlas of one view and its confidence.

    photo: (3, H, W) in [0, 1]; identity (K,); expression (E,); camera: one view's camera in
    the photo's pixels; height: T of the (T, 2T) atlas; sh: (9, 3) fitted light, or None to
    estimate a relative one from the skin.
    """
    triangles, uvs = skin_atlas_triangles(model)
    size = (height, 2 * height)
    neutral = model(identity[None], torch.zeros_like(expression)[None])[0]
    posed = model(identity[None], expression[None])[0]
    samples = sample_texels(photo[None], camera.transform(posed[None]), camera, triangles, uvs,
                            size, None, min_cosine=_MIN_COSINE)
    colour, normal = samples.colour[0], samples.normal[0]
    points = texel_positions(samples, triangles, neutral)
    trusted = geometric_confidence(model, samples, triangles, points, neutral, posed,
                                   expression)
    reference = reference_texels(model, points, neutral)
    if sh is None:
        first = colour_confidence(colour, colour, skin_colour(colour, reference, trusted))
        shading = estimate_shading(colour, normal, (trusted * first) > 0, reference)
    else:
        shading = sh_shading(normal[None], sh[None])[0].clamp(min=_MIN_SHADING)
    albedo = colour / shading
    features = feature_texels(model, points, neutral)
    skin = skin_colour(albedo, reference, trusted)
    trusted = trusted * colour_confidence(albedo, colour, skin, features)
    opening = mouth_opening_texels(albedo, points, *lip_loops(model, neutral), skin, trusted)
    trusted = torch.where(opening, torch.zeros_like(trusted), trusted)
    count = size[0] * size[1]
    image = photo.new_zeros(count, 3).index_copy(0, samples.texel, albedo.clamp(0, 1))
    confidence = photo.new_zeros(count).index_copy(0, samples.texel, trusted)
    covered = torch.zeros(count, dtype=torch.bool, device=photo.device)
    covered[samples.texel] = True
    feature = torch.zeros_like(covered)
    feature[samples.texel[features]] = True
    return ObservedAlbedo(image.T.reshape(3, *size), confidence.view(size), covered.view(size),
                          feature.view(size))
