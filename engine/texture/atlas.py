"""The skin texture atlas written to texture.png.

ICT-FaceKit lays its parts out in UV tiles: the face in u 0..1, head and neck in 1..2,
teeth in 3..4, and the eyes overlapping the face tile. The skin's two tiles go side by
side into one 2:1 image, so the skin UVs have u halved; other parts keep the model's UVs
(they get plain materials, not this texture).
"""

import numpy as np
import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.facemodel.ict import SKIN_ATLAS_UV_SCALE
from engine.fit.state import FitState
from engine.render import interpolate, rasterize, uv_screen_vertices
from engine.texture.unwrap import unwrap_texture

SKIN = "skin"  # face + head/neck


def atlas_uvs(model: FaceModel) -> Tensor:
    """(L, 2) loop UVs with the skin's u halved (the atlas layout); others unchanged."""
    skin_polygon = torch.zeros_like(model.polygon_sizes, dtype=torch.bool)
    skin_polygon[model.triangle_polygons[model.region_triangles(SKIN)]] = True
    scale = torch.where(skin_polygon.repeat_interleave(model.polygon_sizes)[:, None],
                        model.loop_uvs.new_tensor(SKIN_ATLAS_UV_SCALE),
                        model.loop_uvs.new_ones(2))
    return model.loop_uvs * scale


def skin_atlas_triangles(model: FaceModel) -> tuple[Tensor, Tensor]:
    """The skin's triangles (F', 3) and their atlas UVs (F', 3, 2)."""
    faces = model.region_triangles(SKIN)
    return model.triangles[faces], model.triangle_uvs[faces] * model.triangle_uvs.new_tensor(
        SKIN_ATLAS_UV_SCALE)


@torch.no_grad()
def bake_albedo(model: FaceModel, photos: list[np.ndarray], state: FitState,
                texture_size: int) -> tuple[Tensor, Tensor]:
    """The skin albedo atlas (3, T, 2T) in [0, 1] and its seen mask (T, 2T) bool.

    photos: N working images (H,W,3) uint8, the views of the fitted `state` (its cameras
    are in those images' pixels).
    """
    device = state.identity.device
    cameras, sh = state.camera(), state.sh
    height = max(p.shape[0] for p in photos)
    width = max(p.shape[1] for p in photos)
    # photos of different sizes share one batch, padded at the bottom and right (pixel
    # coordinates are unchanged; the padding is black and outside every face)
    images = torch.zeros(len(photos), height, width, 3, dtype=torch.uint8)
    for i, photo in enumerate(photos):
        images[i, :photo.shape[0], :photo.shape[1]] = torch.from_numpy(np.array(photo))
    images = images.to(device).permute(0, 3, 1, 2).float() / 255
    vertices = model(state.identity_batch(), state.expression)
    triangles, uvs = skin_atlas_triangles(model)
    albedo, mask = unwrap_texture(images, cameras.transform(vertices), cameras, triangles, uvs,
                                  (texture_size, 2 * texture_size), sh,
                                  model.mirror_vertices())
    return albedo.clamp(0, 1), mask[0] > 0


def atlas_coverage(model: FaceModel, height: int) -> Tensor:
    """(T, 2T) bool: the atlas texels the skin's UV layout covers, T = height."""
    _, uvs = skin_atlas_triangles(model)
    size = (height, 2 * height)
    screen, triangles = uv_screen_vertices(uvs, size)
    return rasterize(screen, triangles, size).mask[0]


def atlas_positions(model: FaceModel, height: int, vertices: Tensor) -> Tensor:
    """(T, 2T, 3) the point of a mesh (V, 3) at each atlas texel (0 where uncovered)."""
    triangles, uvs = skin_atlas_triangles(model)
    size = (height, 2 * height)
    screen, uv_triangles = uv_screen_vertices(uvs, size)
    fragments = rasterize(screen, uv_triangles, size)
    return interpolate(vertices[triangles].reshape(-1, 3), fragments, uv_triangles)[0]
