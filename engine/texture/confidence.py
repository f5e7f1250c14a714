"""Which unwrapped texels are trustworthy skin: the per-texel confidence of a photo's albedo.

A texel is trusted where the photo saw it head-on (not grazing), where the fitted expression
neither opens the mouth onto it (teeth, mouth interior) nor squeezes the surface (a smile's
folds), and where its de-lit colour is close to the face's own skin colour (the median of
the cheeks and nose bridge): collars, suits, hair, glasses, occluders and specular
highlights fail that test. Brows, eyelids and lips are the face though not skin-coloured:
there only highlights are rejected. Used by the data builder (training masks of the texture model)
and by the final texture (where the photo's detail is kept).
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.color import rgb2lab
from torch import Tensor

from engine.facemodel import FaceModel
from engine.texture.unwrap import TexelSamples

# Landmarks (iBUG) around the reference skin patches: each cheek's centre and the nose bridge.
_CHEEKS = ((2, 31, 41), (14, 35, 46))
_NOSE_BRIDGE = 28
_REFERENCE_RADIUS_CM = 1.6
_INNER_LIP = list(range(60, 68))
# Facial features whose colour is not skin but which are the face (brows, eyelids, lips):
# iBUG landmark loops and how far around them a texel belongs to the feature.
_FEATURES = ((list(range(17, 22)), 0.6), (list(range(22, 27)), 0.6),
             (list(range(36, 42)), 0.45), (list(range(42, 48)), 0.45),
             (list(range(48, 60)), 0.35))
_MOUTH_MARGIN_CM = 0.25  # around the inner lip line at rest ...
_MOUTH_OPEN_MARGIN_CM = 0.3  # ... plus this much at a fully open or smiling mouth
_MIN_AREA_RATIO = 0.6  # triangles squeezed below this fraction of their rest area
_COSINE_RAMP = (0.3, 0.6)  # confidence rises from 0 to 1 over this cosine to the camera
_MAX_COLOUR_DISTANCE = 22.0  # lightness-discounted CIE76 distance to the reference skin
_LIGHTNESS_DISCOUNT = 2.0  # shading errors move L*, much less a* and b*
_HIGHLIGHT_LIGHTNESS = 14.0  # de-lit L* this far above the reference skin is a highlight
_SATURATED = 0.97  # photo values at the sensor's top are clipped highlights


def texel_positions(samples: TexelSamples, triangles: Tensor,
                    vertices: Tensor) -> Tensor:
    """(M, 3) each texel's point on a mesh (V, 3) whose triangles (F, 3) were unwrapped."""
    corners = vertices[triangles[samples.face]]  # (M, 3, 3)
    return (samples.barycentrics[:, :, None] * corners).sum(1)


def _near_points(points: Tensor, centres: Tensor, radius: float) -> Tensor:
    """(M,) points (M, 3) within radius of any of centres (C, 3)."""
    return torch.cdist(points, centres).amin(1) < radius


def _near_loop(points: Tensor, loop: Tensor, margin: float) -> Tensor:
    """(M,) bool: points (M, 3) within `margin` of the closed polyline `loop` (C, 3)."""
    start, end = loop, loop.roll(-1, 0)
    reach = (loop - loop.mean(0)).norm(dim=-1).max() + margin
    candidates = ((points - loop.mean(0)).norm(dim=-1) < reach).nonzero().squeeze(1)
    near = points[candidates]
    edge = end - start  # (C, 3)
    t = ((near[:, None] - start) * edge).sum(-1) / (edge * edge).sum(-1).clamp(min=1e-12)
    closest = start + t.clamp(0, 1)[..., None] * edge  # (M', C, 3)
    inside = (near[:, None] - closest).norm(dim=-1).amin(1) < margin
    out = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    out[candidates[inside]] = True
    return out


def reference_texels(model: FaceModel, samples: TexelSamples, triangles: Tensor,
                     neutral: Tensor) -> Tensor:
    """(M,) bool: texels on the cheeks and nose bridge, whose median colour is the skin's."""
    marks = neutral[model.landmark_vertices]
    centres = torch.stack([marks[list(c)].mean(0) for c in _CHEEKS] + [marks[_NOSE_BRIDGE]])
    return _near_points(texel_positions(samples, triangles, neutral), centres,
                        _REFERENCE_RADIUS_CM)


def feature_texels(model: FaceModel, samples: TexelSamples, triangles: Tensor,
                   neutral: Tensor) -> Tensor:
    """(M,) bool: texels on the brows, eyelids and lips, trusted whatever their colour."""
    points = texel_positions(samples, triangles, neutral)
    marks = neutral[model.landmark_vertices]
    near = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    for loop, margin in _FEATURES:
        near |= _near_loop(points, marks[loop], margin)
    return near


def geometric_confidence(model: FaceModel, samples: TexelSamples, triangles: Tensor,
                         neutral: Tensor, posed: Tensor,
                         expression: Tensor) -> Tensor:
    """(M,) in [0, 1] for one view: seen head-on, away from the mouth opening, not squeezed.

    neutral, posed: (V, 3) the fitted identity at rest and with the view's expression (E,).
    """
    lo, hi = _COSINE_RAMP
    confidence = ((samples.weight[0] - lo) / (hi - lo)).clamp(0, 1)
    names = model.expression_names
    opening = max(float(expression[names.index(n)])
                  for n in ("jawOpen", "mouthSmile_L", "mouthSmile_R"))
    points = texel_positions(samples, triangles, neutral)
    lips = neutral[model.landmark_vertices[_INNER_LIP]]
    mouth = _near_loop(points, lips, _MOUTH_MARGIN_CM + _MOUTH_OPEN_MARGIN_CM * opening)
    rest, moved = (torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]).norm(dim=-1)
                   for v in (neutral[triangles], posed[triangles]))
    squeezed = (moved / rest.clamp(min=1e-9) < _MIN_AREA_RATIO)[samples.face]
    return torch.where(mouth | squeezed, torch.zeros_like(confidence), confidence)


def to_lab(rgb: Tensor) -> Tensor:
    """(M, 3) sRGB in [0, 1] -> (M, 3) CIE L*a*b* (D65)."""
    lab = rgb2lab(rgb.clamp(0, 1).detach().cpu().numpy().astype(np.float64)[:, None])[:, 0]
    return torch.from_numpy(lab).to(rgb)


def skin_colour(albedo: Tensor, reference: Tensor,
                confidence: Tensor) -> Tensor:
    """(3,) the median albedo of the trusted reference texels (all trusted ones if none)."""
    use = reference & (confidence > 0)
    if int(use.sum()) < 20:
        use = confidence > 0
    if not bool(use.any()):
        return albedo.new_full((3,), 0.6)
    return albedo[use].median(0).values


def colour_confidence(albedo: Tensor, photo: Tensor, skin: Tensor,
                      features: Tensor | None = None) -> Tensor:
    """(M,) 0/1: de-lit albedo (M, 3) close to the skin colour (3,), photo (M, 3) not clipped.

    The distance is CIE76 with lightness discounted (shading and freckles move L* more than
    hue); clipped or much brighter than skin texels are highlights. Texels of `features`
    (M,) bool need only not be highlights.
    """
    lab, ref = to_lab(albedo), to_lab(skin[None])[0]
    diff = lab - ref
    distance = ((diff[:, 0] / _LIGHTNESS_DISCOUNT) ** 2 + diff[:, 1:].pow(2).sum(-1)).sqrt()
    highlight = (diff[:, 0] > _HIGHLIGHT_LIGHTNESS) | (photo.amax(-1) > _SATURATED)
    skin_like = distance < _MAX_COLOUR_DISTANCE
    if features is not None:
        skin_like = skin_like | features
    return (skin_like & ~highlight).to(albedo.dtype)
