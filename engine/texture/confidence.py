"""Which unwrapped texels are trustworthy skin: the per-texel confidence of a photo's albedo.

A texel is trusted where the photo saw it head-on (not grazing), where the fitted expression
neither opens the mouth onto it (teeth, mouth interior) nor squeezes the surface (a smile's
folds), and where its de-lit colour is close to the face's own skin colour (the median of
the cheeks and nose bridge): collars, suits, hair, glasses, occluders and specular
highlights fail that test. Brows, eyelids and lips are the face though not skin-coloured:
there only highlights are rejected. Next to the inner lip line, what the photo shows of the
mouth's opening (teeth, the dark interior) is rejected too: a smile is often fitted with the
lips closer than the photo's, and its teeth would be pasted on the lips at rest. Used by the
data builder (training masks of the texture model) and by the final texture (where the
photo's detail is kept).
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
_OUTER_LIP = list(range(48, 60))
# Facial features whose colour is not skin but which are the face (brows, eyelids, lips):
# iBUG landmark loops and how far around them a texel belongs to the feature.
_FEATURES = ((list(range(17, 22)), 0.6), (list(range(22, 27)), 0.6),
             (list(range(36, 42)), 0.45), (list(range(42, 48)), 0.45),
             (_OUTER_LIP, 0.35))
_MOUTH_MARGIN_CM = 0.25  # around the inner lip line at rest ...
_MOUTH_OPEN_MARGIN_CM = 0.3  # ... plus this much at a fully open or smiling mouth
_MIN_AREA_RATIO = 0.6  # triangles squeezed below this fraction of their rest area
_COSINE_RAMP = (0.3, 0.6)  # confidence rises from 0 to 1 over this cosine to the camera
_MAX_COLOUR_DISTANCE = 22.0  # lightness-discounted CIE76 distance to the reference skin
_LIGHTNESS_DISCOUNT = 2.0  # shading errors move L*, much less a* and b*
_HIGHLIGHT_LIGHTNESS = 14.0  # de-lit L* this far above the reference skin is a highlight
_SATURATED = 0.97  # photo values at the sensor's top are clipped highlights
# The mouth's opening seen on closed lips. The fit often closes a smile's lips further than
# the photo's (the astronaut's and two congress smiles with visible teeth fit with jawOpen
# <= 0.013, mouthSmile <= 0.18), so lip texels near the inner lip line project onto the
# teeth or the mouth's interior: measured 0.3-0.73 cm from the inner lip line at rest, the
# lips being ~0.9 cm thick. Texels within this reach of it are tested for being the opening:
_LIP_BAND_CM = 0.8
# Teeth de-lit are not white: the lips' shadow and the JPEG's coarse chroma leave them at
# L* 70-82, a* 3-20 (CIE76 distance to the skin < 22, so the colour test keeps them). They
# are brighter than the skin (3-13 L*) and less red than the lips (a* 10-30 lower); lips
# are darker than the skin and redder, their highlights less red and bright (rejected too).
_TEETH_ABOVE_SKIN_L = 4.0
_TEETH_BELOW_LIP_A = 6.0
_INTERIOR_BELOW_LIP_L = 25.0  # the dark interior and the gaps between teeth: far below lips
_OPENING_FRINGE_CM = 0.1  # the blurred edge between lips and teeth goes with the teeth
_OPENING_COLUMN_CM = 0.25  # along the lip line, a tooth marks the opening this far each way
_OWN_COLUMN_CM = 0.1  # a texel's own column across the lip line: this far along it each way
_ARC_BIN_CM = 0.05  # columns are found in bins of this width along the lip line


def texel_positions(samples: TexelSamples, triangles: Tensor,
                    vertices: Tensor) -> Tensor:
    """(M, 3) each texel's point on a mesh (V, 3) whose triangles (F, 3) were unwrapped."""
    corners = vertices[triangles[samples.face]]  # (M, 3, 3)
    return (samples.barycentrics[:, :, None] * corners).sum(1)


def _near_points(points: Tensor, centres: Tensor, radius: float) -> Tensor:
    """(M,) points (M, 3) within radius of any of centres (C, 3)."""
    return torch.cdist(points, centres).amin(1) < radius


def _along_loop(points: Tensor, loop: Tensor) -> tuple[Tensor, Tensor]:
    """For points (M, 3) and the closed polyline `loop` (C, 3): (M,) the distance to it and
    (M,) the arc length along it of the closest point."""
    start, end = loop, loop.roll(-1, 0)
    edge = end - start
    length = edge.norm(dim=-1)
    t = ((points[:, None] - start) * edge).sum(-1) / length.square().clamp(min=1e-12)
    closest = start + t.clamp(0, 1)[..., None] * edge  # (M, C, 3)
    distance = (points[:, None] - closest).norm(dim=-1)
    nearest = distance.argmin(1)
    rows = torch.arange(len(points), device=points.device)
    arc = (length.cumsum(0) - length)[nearest] + (t.clamp(0, 1) * length)[rows, nearest]
    return distance[rows, nearest], arc


def _near_loop(points: Tensor, loop: Tensor, margin: float) -> Tensor:
    """(M,) bool: points (M, 3) within `margin` of the closed polyline `loop` (C, 3)."""
    reach = (loop - loop.mean(0)).norm(dim=-1).max() + margin
    candidates = ((points - loop.mean(0)).norm(dim=-1) < reach).nonzero().squeeze(1)
    inside = _along_loop(points[candidates], loop)[0] < margin
    out = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    out[candidates[inside]] = True
    return out


def reference_texels(model: FaceModel, points: Tensor, neutral: Tensor) -> Tensor:
    """(M,) bool: texels on the cheeks and nose bridge, whose median colour is the skin's.

    points: (M, 3) the texels on the neutral mesh (V, 3) (texel_positions)."""
    marks = neutral[model.landmark_vertices]
    centres = torch.stack([marks[list(c)].mean(0) for c in _CHEEKS] + [marks[_NOSE_BRIDGE]])
    return _near_points(points, centres, _REFERENCE_RADIUS_CM)


def lip_loops(model: FaceModel, vertices: Tensor) -> tuple[Tensor, Tensor]:
    """The inner (8, 3) and outer (12, 3) lip lines (iBUG 60-67, 48-59) on a mesh (V, 3),
    closed loops."""
    marks = vertices[model.landmark_vertices]
    return marks[_INNER_LIP], marks[_OUTER_LIP]


def feature_texels(model: FaceModel, points: Tensor, neutral: Tensor) -> Tensor:
    """(M,) bool: texels on the brows, eyelids and lips, trusted whatever their colour.

    points: (M, 3) the texels on the neutral mesh (V, 3) (texel_positions)."""
    marks = neutral[model.landmark_vertices]
    near = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    for loop, margin in _FEATURES:
        near |= _near_loop(points, marks[loop], margin)
    return near


def geometric_confidence(model: FaceModel, samples: TexelSamples, triangles: Tensor,
                         points: Tensor, neutral: Tensor, posed: Tensor,
                         expression: Tensor) -> Tensor:
    """(M,) in [0, 1] for one view: seen head-on, away from the mouth opening, not squeezed.

    points: (M, 3) the texels on `neutral` (texel_positions); neutral, posed: (V, 3) the
    fitted identity at rest and with the view's expression (E,).
    """
    lo, hi = _COSINE_RAMP
    confidence = ((samples.weight[0] - lo) / (hi - lo)).clamp(0, 1)
    names = model.expression_names
    opening = max(float(expression[names.index(n)])
                  for n in ("jawOpen", "mouthSmile_L", "mouthSmile_R"))
    mouth = _near_loop(points, lip_loops(model, neutral)[0],
                       _MOUTH_MARGIN_CM + _MOUTH_OPEN_MARGIN_CM * opening)
    rest, moved = (torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]).norm(dim=-1)
                   for v in (neutral[triangles], posed[triangles]))
    squeezed = (moved / rest.clamp(min=1e-9) < _MIN_AREA_RATIO)[samples.face]
    return torch.where(mouth | squeezed, torch.zeros_like(confidence), confidence)


def _inside(points: Tensor, loop: Tensor) -> Tensor:
    """(M,) bool: points (M, 3) inside the closed polyline `loop` (C, 3) seen from the front
    (x and y; the face looks down +z), by counting the edges a ray to +x crosses."""
    x, y = points[:, 0:1], points[:, 1:2]
    (x0, y0), (x1, y1) = loop[:, :2].T, loop.roll(-1, 0)[:, :2].T
    straddles = (y0 > y) != (y1 > y)  # (M, C)
    crossing = x0 + (y - y0) * (x1 - x0) / torch.where(y1 == y0, 1e-12, y1 - y0)
    return ((straddles & (x < crossing)).sum(1) % 2) == 1


def mouth_opening_texels(albedo: Tensor, points: Tensor, inner_lip: Tensor, outer_lip: Tensor,
                         skin: Tensor, confidence: Tensor) -> Tensor:
    """(M,) bool: texels between the inner lip line and what the photo shows of the mouth's
    opening there.

    albedo: (M, 3) de-lit colour; points: (M, 3) the texels on the neutral mesh; inner_lip:
    (C, 3) and outer_lip: (C', 3) the inner and outer lip loops at rest; skin: (3,) the
    face's skin colour; confidence: (M,), only trusted texels take part. The lips' colour is
    the band's own (its redder half), so no fixed lip colour is assumed. Teeth on the lips,
    brighter than the skin and less red than the lips, and the interior, much darker than
    the lips, are the opening; the teeth in the mouth's shadow and the gaps between them are
    skin-coloured, so everything from the lip line out to the farthest bright tooth nearby
    along the line is the opening too (the opening is one region whose edge is the photo's
    lip line; dark texels do not reach that way: the mouth's corners are dark at rest too).
    A closed mouth's band is lips and skin: a bright texel there has lip-red ones between
    it and the line (a highlight) and is kept.
    """
    band = _near_loop(points, inner_lip, _LIP_BAND_CM) & (confidence > 0)
    opening = torch.zeros_like(band)
    if int(band.sum()) < 20:
        return opening
    lab, ref = to_lab(albedo[band]), to_lab(skin[None])[0]
    lip = lab[lab[:, 1] >= lab[:, 1].median()].median(0).values
    lip_like = lab[:, 1] >= lip[1] - _TEETH_BELOW_LIP_A
    # teeth pasted on the lips are on the lips (bright skin beyond them is only skin)
    teeth = (lab[:, 0] > ref[0] + _TEETH_ABOVE_SKIN_L) & ~lip_like & _inside(points[band],
                                                                             outer_lip)
    opening[band] = lab[:, 0] < lip[0] - _INTERIOR_BELOW_LIP_L
    if not bool(teeth.any()):
        return opening
    distance, arc = _along_loop(points[band], inner_lip)
    # columns across the lip line: bins of its arc length, so that the work is linear in the
    # texels (a 2048 atlas has ~50k of them in the band)
    perimeter = float((inner_lip - inner_lip.roll(-1, 0)).norm(dim=-1).sum())
    bins = max(1, round(perimeter / _ARC_BIN_CM))
    column = (arc / perimeter * bins).long().clamp(0, bins - 1)

    def around(values: Tensor, where: Tensor, reduce: str, reach_cm: float) -> Tensor:
        """Per band texel, the amax or amin of `values` at the `where` texels of the columns
        within reach_cm along the (closed) lip line; -inf or inf where there are none."""
        empty = -torch.inf if reduce == "amax" else torch.inf
        per_column = distance.new_full((bins,), empty).scatter_reduce(
            0, column[where], values, reduce)
        steps = round(reach_cm / _ARC_BIN_CM)
        shifted = torch.stack([per_column.roll(k) for k in range(-steps, steps + 1)])
        return (shifted.amax(0) if reduce == "amax" else shifted.amin(0))[column]

    # the opening starts at the lip line: a bright texel with lip-red ones between it and
    # the line (in its own column) is a highlight on the lips, not a tooth
    teeth &= distance < around(distance[lip_like], lip_like, "amin", _OWN_COLUMN_CM)
    reach = around(distance[teeth], teeth, "amax", _OPENING_COLUMN_CM)
    opening[band] |= distance <= reach + _OPENING_FRINGE_CM  # reach -inf: no tooth near
    return opening


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
