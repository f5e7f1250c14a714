"""Bake the UV albedo from the photo(s) through the fitted cameras.

Each texel of the skin (face and head/neck, laid side by side: the model's UV tiles 0
and 1 squeezed into one 2:1 atlas) is given its 3D point on the fitted mesh in every
view, kept where that point is visible (z-buffer) and faces the camera, coloured from
the photo and divided by the fitted SH shading, so the result is an albedo. Views merge
weighted by how squarely they see the texel. Texels no view sees take the colour of
their mirror point (the face is nearly symmetric), and what is left is filled smoothly
from the seen texels by push-pull.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.facemodel import FaceModel
from engine.render import (
    PinholeCamera,
    rasterize,
    sh_basis,
    uv_screen_vertices,
    vertex_normals,
)

SKIN = "skin"  # face + head/neck, the parts texture.png covers
_MIN_COS = 0.25  # texels seen at grazing angles smear the photo: drop them
_MIN_SHADING = 0.15


def atlas_uvs(model: FaceModel) -> Tensor:
    """(L, 2) loop UVs with the skin's two UV tiles packed into [0, 1] (u halved);
    other parts keep the model's UVs."""
    skin_polygon = torch.zeros_like(model.polygon_sizes, dtype=torch.bool)
    skin_polygon[model.triangle_polygons[model.region_triangles(SKIN)]] = True
    loop_skin = skin_polygon.repeat_interleave(model.polygon_sizes)
    uvs = model.loop_uvs.clone()
    uvs[loop_skin, 0] = uvs[loop_skin, 0] / 2
    return uvs


def _texel_geometry(model: FaceModel, size: tuple[int, int]):
    """Per covered texel: triangle (M,), barycentrics (M,3) and flat texel index (M,)."""
    faces = model.region_triangles(SKIN)
    uvs = model.triangle_uvs[faces].clone()
    uvs[..., 0] = uvs[..., 0] / 2
    screen, tris = uv_screen_vertices(uvs, size)
    frags = rasterize(screen, tris, size)
    tid = frags.triangle_id.reshape(-1)
    texel = torch.nonzero(tid >= 0).squeeze(1)
    return model.triangles[faces][tid[texel]], frags.barycentrics.reshape(-1, 3)[texel], texel


def _at_texels(values: Tensor, corners: Tensor, bary: Tensor) -> Tensor:
    """values (V,C) at texel points given by corner vertices (M,3) and barycentrics (M,3)."""
    return (values[corners] * bary[..., None]).sum(1)


def _sample(image: Tensor, uv: Tensor) -> Tensor:
    """image (3,H,W), uv (M,2) pixels (centre convention) -> (M,3) bilinear, zero outside."""
    h, w = image.shape[1:]
    grid = torch.stack([(2 * uv[:, 0] + 1) / w - 1, (2 * uv[:, 1] + 1) / h - 1], -1)
    return F.grid_sample(image[None], grid[None, None], align_corners=False)[0, :, 0].T


def _depth_buffer(vertices_cam: Tensor, camera: PinholeCamera, triangles: Tensor,
                  size: tuple[int, int]) -> Tensor:
    frags = rasterize(camera.project_camera_space(vertices_cam[None]), triangles, size)
    return torch.where(frags.triangle_id[0] >= 0, frags.depth[0],
                       torch.full_like(frags.depth[0], float("inf")))


def _view_colours(points: Tensor, normals: Tensor, photo: Tensor, camera: PinholeCamera,
                  zbuffer: Tensor, sh: Tensor) -> tuple[Tensor, Tensor]:
    """Albedo (M,3) and weight (M,) of texel points (M,3) / normals (M,3) (camera space)."""
    uvz = camera.project_camera_space(points[None])[0]
    h, w = zbuffer.shape
    u, v, z = uvz.unbind(-1)
    inside = (u > -0.5) & (u < w - 0.5) & (v > -0.5) & (v < h - 0.5) & (z > 0)
    ui = u.round().long().clamp(0, w - 1)
    vi = v.round().long().clamp(0, h - 1)
    visible = inside & (z <= zbuffer[vi, ui] + 0.15)  # cm of slack for depth interpolation
    cos = -(normals * F.normalize(points, dim=-1)).sum(-1)
    weight = torch.where(visible & (cos > _MIN_COS), cos**2, torch.zeros_like(cos))
    shading = (sh_basis(normals) @ sh).clamp(min=_MIN_SHADING)  # (M,3)
    return _sample(photo, uvz[:, :2]) / shading, weight


def push_pull_fill(image: Tensor, weight: Tensor) -> Tensor:
    """Fill texels of weight 0 in image (3,H,W) smoothly from the weighted rest (push-pull)."""
    if image.shape[-1] <= 1 or image.shape[-2] <= 1:
        return image
    known = (weight > 0).float()[None]
    small = F.avg_pool2d((image * known)[None], 2, ceil_mode=True)[0]
    small_w = F.avg_pool2d(known[None], 2, ceil_mode=True)[0]
    coarse = push_pull_fill(small / small_w.clamp(min=1e-8), small_w[0])
    up = F.interpolate(coarse[None], size=image.shape[-2:], mode="bilinear",
                       align_corners=False)[0]
    return image * known + up * (1 - known)


@torch.no_grad()
def bake_albedo(model: FaceModel, photos: list[np.ndarray], identity: Tensor,
                expression: Tensor, cameras: PinholeCamera, sh: Tensor,
                texture_size: int) -> tuple[Tensor, Tensor]:
    """The skin albedo atlas (3, T, 2T) in [0, 1] and its seen mask (T, 2T) bool.

    photos: N working images (H,W,3) uint8; identity (K,); expression (N,E);
    cameras: N cameras in those images' pixels; sh: (N,9,3).
    """
    size = (texture_size, 2 * texture_size)
    device = identity.device
    tri, bary, texel = _texel_geometry(model, size)
    mirror = model.mirror_vertices()
    occluders = model.triangles[model.region_triangles("skin")]
    colour = torch.zeros(texel.shape[0], 3, device=device)
    weight = torch.zeros(texel.shape[0], device=device)
    mirror_colour = torch.zeros_like(colour)
    mirror_weight = torch.zeros_like(weight)
    for i, photo in enumerate(photos):
        image = torch.from_numpy(np.array(photo)).to(device).permute(2, 0, 1).float() / 255
        camera = PinholeCamera(cameras.rotation[i:i + 1], cameras.translation[i:i + 1],
                               cameras.focal[i:i + 1], cameras.principal_point[i:i + 1])
        verts = camera.transform(model(identity[None], expression[i:i + 1]))[0]
        normals = vertex_normals(verts[None], model.triangles)[0]
        zbuffer = _depth_buffer(verts, camera, occluders, photo.shape[:2])
        for corners, target, total in ((tri, colour, weight),
                                       (mirror[tri], mirror_colour, mirror_weight)):
            points = _at_texels(verts, corners, bary)
            point_normals = F.normalize(_at_texels(normals, corners, bary), dim=-1)
            albedo, w = _view_colours(points, point_normals, image, camera, zbuffer, sh[i])
            target += albedo * w[:, None]
            total += w
    seen = weight > 1e-3
    use_mirror = ~seen & (mirror_weight > 1e-3)
    merged = torch.where(seen[:, None], colour / weight.clamp(min=1e-8)[:, None],
                         mirror_colour / mirror_weight.clamp(min=1e-8)[:, None])
    known = seen | use_mirror
    flat = torch.zeros(3, size[0] * size[1], device=device)
    flat_w = torch.zeros(size[0] * size[1], device=device)
    flat[:, texel] = merged.T.clamp(0, 1)
    flat_w[texel] = known.float()
    atlas = push_pull_fill(flat.view(3, *size), flat_w.view(size))
    mask = torch.zeros(size[0] * size[1], dtype=torch.bool, device=device)
    mask[texel] = seen
    return atlas.clamp(0, 1), mask.view(size)
