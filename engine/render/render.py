"""Thin composition of the primitives for the fitter: a textured, SH-lit render."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.render.antialias import antialias
from engine.render.camera import PinholeCamera
from engine.render.interpolate import interpolate, interpolate_face_varying
from engine.render.rasterize import Fragments, rasterize
from engine.render.shading import shade_sh, vertex_normals
from engine.render.texture import sample_texture


@dataclass
class RenderOutput:
    """image: (B, H, W, C) shaded colour over `background`; mask: (B, H, W, 1) coverage in
    [0, 1] (antialiased when requested); fragments: the rasteriser output."""

    image: torch.Tensor
    mask: torch.Tensor
    fragments: Fragments


def render_textured(
    vertices_cam: torch.Tensor,
    camera: PinholeCamera,
    triangles: torch.Tensor,
    triangle_uvs: torch.Tensor,
    texture: torch.Tensor,
    sh_coefficients: torch.Tensor,
    image_size: tuple[int, int],
    background: torch.Tensor | None = None,
    antialiased: bool = True,
    neighbours: torch.Tensor | None = None,
) -> RenderOutput:
    """Render camera-space vertices with a UV texture under SH light (camera-space normals).

    vertices_cam: (B, V, 3) camera space (the camera's rotation and translation are not
        applied again; only its intrinsics project). triangles: (F, 3) long.
    triangle_uvs: (F, 3, 2) OBJ-convention UVs. texture: (B, C, Ht, Wt).
    sh_coefficients: (B, 9, C). image_size: (H, W).
    background: (B, H, W, C) image behind the mesh (e.g. the photo), default black.
    antialiased: blend silhouette pixels (`antialias`), giving silhouette gradients.
    neighbours: `triangle_neighbours(triangles)`, to skip recomputing it in a loop.
    """
    screen = camera.project_camera_space(vertices_cam)
    fragments = rasterize(screen, triangles, image_size)
    normals = interpolate(vertex_normals(vertices_cam, triangles), fragments, triangles)
    uv = interpolate_face_varying(triangle_uvs, fragments)
    albedo = sample_texture(texture, uv)
    mask = fragments.mask[..., None].to(albedo.dtype)
    image = shade_sh(albedo, normals, sh_coefficients) * mask
    if background is not None:
        image = image + background * (1.0 - mask)
    if antialiased:
        both = antialias(torch.cat([image, mask], -1), fragments, screen, triangles, neighbours)
        image, mask = both[..., :-1], both[..., -1:]
    return RenderOutput(image=image, mask=mask, fragments=fragments)
