"""Generated teeth and gums colour maps (engine/texture/teeth.py) on the real face model."""

import numpy as np
import torch

from engine.render import rasterize, uv_screen_vertices
from engine.texture import teeth

torch.set_num_threads(1)


def _covered(face_model, region: str, size: int) -> np.ndarray:
    """(size, size) bool: texels the region's triangles cover in its own tile."""
    uvs = face_model.triangle_uvs[face_model.region_triangles(region)].clone()
    uvs[..., 0] -= uvs[..., 0].mean(1, keepdim=True).floor()
    screen, triangles = uv_screen_vertices(uvs, (size, size))
    return rasterize(screen, triangles, (size, size)).mask[0].numpy()


def test_teeth_and_gums_maps_are_plausible_and_not_flat(face_model):
    size = 256
    tooth = teeth.teeth_texture(face_model, face_model.neutral, size=size).astype(float)
    gums = teeth.gums_texture(face_model, face_model.neutral, size=size).astype(float)
    assert tooth.shape == gums.shape == (size, size, 3)
    on_teeth = tooth[_covered(face_model, "teeth", size)]
    on_gums = gums[_covered(face_model, "gums_tongue", size)]
    assert len(on_teeth) > 0.3 * size * size and len(on_gums) > 0.3 * size * size
    # Not a flat colour: shading between the gum line and the edge, and between teeth.
    assert on_teeth.std(0).min() > 8, on_teeth.std(0)
    assert on_gums.std(0).min() > 5, on_gums.std(0)
    # Enamel off-white (bright, a little yellow), gums pink (red well above green).
    r, g, b = np.median(on_teeth, 0)
    assert min(r, g, b) > 140 and r >= g >= b
    r, g, b = np.median(on_gums, 0)
    assert r > g + 50 and abs(g - b) < 30
    # The neck of a tooth is yellower (less blue for its red) than the rest of the enamel.
    yellowness = on_teeth[:, 0] - on_teeth[:, 2]
    assert np.percentile(yellowness, 90) > np.percentile(yellowness, 10) + 20
    # Islands are padded (no black border for filtering), and the same seed gives the
    # same map.
    assert tooth.min() > 40
    np.testing.assert_array_equal(
        tooth, teeth.teeth_texture(face_model, face_model.neutral, size=size))
