"""ICT-FaceKit facts the fitter, the texture code and the result writer rely on, named once.

Sources: the ICT-FaceKit README's topology tables (see regions.py) and its expression list.
"""

import torch
from torch import Tensor

from engine.facemodel.regions import PARTS

# Vertices 0..9408: the front face; every landmark and jaw-contour candidate lies in it.
FACE_VERTICES = PARTS["face"][0][1]
# Vertices 0..6705: the face without ears and neck (what shape errors are measured on).
NARROW_FACE_VERTICES = PARTS["narrow_face"][0][1]

# The 53 ARKit-style shapes come first; PupilDilate_L/R and cheekRaiser_L/R follow.
ARKIT_STYLE_EXPRESSIONS = 53
# Gaze (eyeLook*) is not fitted: landmarks and shading say nothing about where eyes look.
_UNFITTED_PREFIXES = ("eyeLook",)
# Expressions that move the mouth or jaw sideways: from one photo they trade off against
# the head's yaw (a detector's mouth points shift with it), so they get their own prior.
SIDEWAYS_EXPRESSIONS = ("mouthLeft", "mouthRight", "jawLeft", "jawRight")

# The skin atlas (texture.png) puts the face tile (u 0..1) and the head/neck tile
# (u 1..2) side by side in one 2:1 image: skin UVs are scaled by this.
SKIN_ATLAS_UV_SCALE = (0.5, 1.0)


def fitted_expression_mask(names: list[str], device: str | torch.device = "cpu") -> Tensor:
    """(E,) 1.0 for the expressions the fit may move, 0.0 for those held at 0."""
    return torch.tensor([float(i < ARKIT_STYLE_EXPRESSIONS
                               and not name.startswith(_UNFITTED_PREFIXES))
                         for i, name in enumerate(names)], device=device)
