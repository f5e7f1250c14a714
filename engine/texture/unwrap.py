"""Unwrap a UV albedo from photos through fitted cameras, with symmetric and smooth fill.

For every texel covered by the mesh's UV layout: its surface point and normal in each view
(barycentrics of the UV rasterisation applied to the camera-space vertices), projected into
that photo; kept where the z-buffer of the photo's own rasterisation says it is the visible
surface and where it faces the camera (weight = cosine); the photo sampled there is divided
by the fitted SH shading, so the result is an albedo; views merge weighted by cosine.
Texels no view sees take the albedo of their mirror point: the same barycentrics over the
mirror vertices (x -> -x on the neutral mesh) looked up in the photos the same way, so
seams in the UV layout do not matter. What is still missing is filled by push-pull.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from engine.render import (
    PinholeCamera,
    interpolate,
    rasterize,
    sh_shading,
    uv_screen_vertices,
    vertex_normals,
)
from engine.render.rasterize import Fragments

# Shading below this is too dark to divide by without amplifying noise.
_MIN_SHADING = 0.05


def _texel_fragments(
    triangle_uvs: torch.Tensor, texture_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Covered texels of the UV layout: flat texel index (M,), face (M,), barycentrics (M, 3)."""
    screen, uv_triangles = uv_screen_vertices(triangle_uvs, texture_size)
    fragments = rasterize(screen, uv_triangles, texture_size)
    face = fragments.triangle_id.reshape(-1)
    texel = (face >= 0).nonzero().squeeze(1)
    return texel, face[texel], fragments.barycentrics.reshape(-1, 3)[texel]


def _as_fragments(face: torch.Tensor, barycentrics: torch.Tensor, views: int) -> Fragments:
    """Packed texels (M,) as a (views, 1, M) image of fragments, for `interpolate`."""
    count = face.numel()
    return Fragments(
        triangle_id=face.view(1, 1, count).expand(views, 1, count),
        barycentrics=barycentrics.view(1, 1, count, 3).expand(views, 1, count, 3),
        depth=barycentrics.new_ones(views, 1, count),
    )


def _sample_views(
    photos: torch.Tensor,
    vertices_cam: torch.Tensor,
    normals: torch.Tensor,
    cameras: PinholeCamera,
    triangles: torch.Tensor,
    depth_maps: torch.Tensor,
    texels: Fragments,
    sh_coefficients: torch.Tensor | None,
    min_cosine: float,
    depth_tolerance: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Albedo (N, M, 3) and weight (N, M) of M texels in N photos.

    The weight is the cosine between the normal and the direction to the camera, zero where
    the point is hidden (behind the photo's z-buffer by more than depth_tolerance, relative),
    outside the photo, or seen more obliquely than min_cosine.
    """
    views, _, height, width = photos.shape
    points = interpolate(vertices_cam, texels, triangles)[:, 0]  # (N, M, 3)
    normal = F.normalize(interpolate(normals, texels, triangles)[:, 0], dim=-1)
    cosine = -(normal * F.normalize(points, dim=-1)).sum(-1)  # camera at the origin
    uvz = cameras.project_camera_space(points)
    u, v, z = uvz.unbind(-1)
    # The texel is visible if it is the surface in the photo's z-buffer at the nearest
    # pixel, and all four bilinear taps see the mesh (no background blended in).
    offsets = torch.arange(views, device=photos.device)[:, None] * (height * width)
    x0, y0 = u.floor().long(), v.floor().long()
    inside = (x0 >= 0) & (x0 < width - 1) & (y0 >= 0) & (y0 < height - 1) & (z > 0)
    x0, y0 = x0.clamp(0, width - 2), y0.clamp(0, height - 2)
    flat_depth = depth_maps.reshape(-1)

    def depth_at(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return flat_depth.index_select(0, (offsets + y * width + x).view(-1)).view_as(z)

    taps = [depth_at(x0 + dx, y0 + dy) for dy in (0, 1) for dx in (0, 1)]
    nearest = depth_at(x0 + (u - x0 >= 0.5).long(), y0 + (v - y0 >= 0.5).long())
    covered = torch.stack(taps).amin(0) > 0
    visible = inside & covered & (z <= nearest * (1.0 + depth_tolerance))
    weight = torch.where(visible & (cosine > min_cosine), cosine, torch.zeros_like(cosine))
    grid = torch.stack([(u + 0.5) / width * 2.0 - 1.0, (v + 0.5) / height * 2.0 - 1.0], -1)
    colour = F.grid_sample(photos, grid[:, None], mode="bilinear", align_corners=False)
    colour = colour[:, :, 0].transpose(1, 2)  # (N, M, 3)
    if sh_coefficients is not None:
        shading = sh_shading(normal[:, None], sh_coefficients)[:, 0]
        weight = torch.where(shading.amin(-1) > _MIN_SHADING, weight, torch.zeros_like(weight))
        colour = colour / shading.clamp(min=_MIN_SHADING)
    return colour, weight


def _merge(colour: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean over views: (N, M, 3), (N, M) -> (M, 3), total weight (M,)."""
    total = weight.sum(0)
    mean = (colour * weight[..., None]).sum(0) / total.clamp(min=1e-12)[:, None]
    return mean, total


def push_pull_fill(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill unknown pixels smoothly from known ones (push-pull pyramid).

    image: (C, H, W); known: (H, W) bool. Push: average known pixels down a pyramid of
    halvings; pull: fill each level's unknown pixels from the coarser level, upsampled.
    Returns (C, H, W) with known pixels unchanged.
    """
    weights = [known[None, None].to(image.dtype)]
    levels = [image[None] * weights[0]]
    while min(levels[-1].shape[-2:]) > 1:
        weights.append(F.avg_pool2d(weights[-1], 2, ceil_mode=True))
        levels.append(F.avg_pool2d(levels[-1], 2, ceil_mode=True))
    filled = levels[-1] / weights[-1].clamp(min=1e-12)
    for level, weight in zip(reversed(levels[:-1]), reversed(weights[:-1]), strict=True):
        coarse = F.interpolate(filled, size=level.shape[-2:], mode="bilinear", align_corners=False)
        own = level / weight.clamp(min=1e-12)
        filled = torch.where(weight > 0, own, coarse)
    return torch.where(known[None], image, filled[0])


def unwrap_texture(
    photos: torch.Tensor,
    vertices_cam: torch.Tensor,
    cameras: PinholeCamera,
    triangles: torch.Tensor,
    triangle_uvs: torch.Tensor,
    texture_size: int | tuple[int, int],
    sh_coefficients: torch.Tensor | None = None,
    mirror_vertices: torch.Tensor | None = None,
    min_cosine: float = 0.2,
    depth_tolerance: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bake a UV albedo from N photos of one fitted mesh.

    photos: (N, 3, H, W) in [0, 1]. vertices_cam: (N, V, 3) camera-space vertices per view.
    cameras: N cameras (only the intrinsics are used: vertices are already in camera space).
    triangles: (F, 3) long, the part of the mesh to bake (it also occludes).
    triangle_uvs: (F, 3, 2) OBJ-convention UVs. texture_size: T, or (Ht, Wt).
    sh_coefficients: (N, 9, 3) fitted light per view (camera-space normals), or None to
        take the photo colours as they are.
    mirror_vertices: (V,) each vertex's left/right mirror on the neutral mesh (see
        `FaceModel.mirror_vertices`), or None for no symmetric completion.
    min_cosine: texels seen more obliquely are ignored (they smear the photo).
    depth_tolerance: relative depth slack of the visibility test.
    Returns albedo (3, Ht, Wt) (every texel filled: seen, mirrored, then push-pull) and
    mask (1, Ht, Wt) float, 1 where a photo saw the texel directly.
    """
    if isinstance(texture_size, int):
        texture_size = (texture_size, texture_size)
    views, _, height, width = photos.shape
    texel, face, barycentrics = _texel_fragments(triangle_uvs, texture_size)
    texels = _as_fragments(face, barycentrics, views)
    photo_screen = cameras.project_camera_space(vertices_cam)
    depth_maps = rasterize(photo_screen, triangles, (height, width)).depth
    normals = vertex_normals(vertices_cam, triangles)
    sample: dict[str, Any] = dict(
        photos=photos,
        vertices_cam=vertices_cam,
        normals=normals,
        cameras=cameras,
        depth_maps=depth_maps,
        texels=texels,
        sh_coefficients=sh_coefficients,
        min_cosine=min_cosine,
        depth_tolerance=depth_tolerance,
    )
    colour, weight = _merge(*_sample_views(triangles=triangles, **sample))
    seen = weight > 0
    if mirror_vertices is not None:
        mirrored, mirror_weight = _merge(
            *_sample_views(triangles=mirror_vertices[triangles], **sample)
        )
        use_mirror = ~seen & (mirror_weight > 0)
        colour = torch.where(use_mirror[:, None], mirrored, colour)
        filled = seen | use_mirror
    else:
        filled = seen
    size = texture_size[0] * texture_size[1]
    albedo = photos.new_zeros(size, 3).index_copy(0, texel, colour)
    known = torch.zeros(size, dtype=torch.bool, device=photos.device)
    known[texel[filled]] = True
    mask = photos.new_zeros(size).index_copy(0, texel, seen.to(photos.dtype))
    albedo = albedo.T.reshape(3, *texture_size)
    albedo = push_pull_fill(albedo, known.view(texture_size))
    return albedo, mask.view(1, *texture_size)


@dataclass
class TexelSamples:
    """What N photos see of the M covered texels of a UV layout (texture_size (Ht, Wt)).

    texel: (M,) flat texel index; face: (M,) triangle of each texel; barycentrics: (M, 3);
    colour: (N, M, 3) photo colour (divided by the SH shading when one was given);
    weight: (N, M) cosine to the camera, 0 where hidden, outside or too oblique;
    normal: (N, M, 3) unit camera-space normal.
    """

    texture_size: tuple[int, int]
    texel: torch.Tensor
    face: torch.Tensor
    barycentrics: torch.Tensor
    colour: torch.Tensor
    weight: torch.Tensor
    normal: torch.Tensor


def sample_texels(
    photos: torch.Tensor,
    vertices_cam: torch.Tensor,
    cameras: PinholeCamera,
    triangles: torch.Tensor,
    triangle_uvs: torch.Tensor,
    texture_size: tuple[int, int],
    sh_coefficients: torch.Tensor | None = None,
    min_cosine: float = 0.2,
    depth_tolerance: float = 0.01,
) -> TexelSamples:
    """Per-view texel samples without merging or filling (arguments as `unwrap_texture`),
    for callers that judge each texel themselves (the texture model's confidence masks)."""
    views, _, height, width = photos.shape
    texel, face, barycentrics = _texel_fragments(triangle_uvs, texture_size)
    texels = _as_fragments(face, barycentrics, views)
    depth_maps = rasterize(cameras.project_camera_space(vertices_cam), triangles,
                           (height, width)).depth
    normals = vertex_normals(vertices_cam, triangles)
    colour, weight = _sample_views(photos, vertices_cam, normals, cameras, triangles, depth_maps,
                                   texels, sh_coefficients, min_cosine, depth_tolerance)
    normal = F.normalize(interpolate(normals, texels, triangles)[:, 0], dim=-1)
    return TexelSamples(texture_size, texel, face, barycentrics, colour, weight, normal)
