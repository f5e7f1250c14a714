"""Attribute interpolation over rasterised fragments (nvdiffrast's `interpolate`)."""

from __future__ import annotations

import torch

from engine.render.rasterize import Fragments


def _blend(
    flat_values: torch.Tensor, corner_index: torch.Tensor, fragments: Fragments
) -> torch.Tensor:
    """Barycentric blend of rows of flat_values (N, C) picked by corner_index (B, H, W, 3).

    Returns (B, H, W, C), 0 on background (whose barycentrics are 0). Uses one
    `index_select` per corner: on CPU much faster than advanced indexing, and its backward
    is an `index_add`.
    """
    bary = fragments.barycentrics.reshape(-1, 3)
    index = corner_index.reshape(-1, 3)
    out = flat_values.index_select(0, index[:, 0]) * bary[:, 0:1]
    out = out.addcmul(flat_values.index_select(0, index[:, 1]), bary[:, 1:2])
    out = out.addcmul(flat_values.index_select(0, index[:, 2]), bary[:, 2:3])
    return out.view(*fragments.triangle_id.shape, flat_values.shape[-1])


def interpolate(
    attributes: torch.Tensor, fragments: Fragments, triangles: torch.Tensor
) -> torch.Tensor:
    """Interpolate per-vertex attributes at every pixel.

    attributes: (B, V, C) or (V, C) shared by the batch.
    fragments: from `rasterize` over the same vertices and triangles.
    triangles: (F, 3) long.
    Returns (B, H, W, C); background pixels are 0. Perspective-correct for attributes that
    are linear in 3D. Differentiable w.r.t. attributes and the barycentrics.
    """
    face = fragments.triangle_id.clamp(min=0)
    corner_vertices = triangles.index_select(0, face.view(-1)).view(*face.shape, 3)
    if attributes.dim() == 2:
        return _blend(attributes, corner_vertices, fragments)
    batch_size, num_vertices, channels = attributes.shape
    offset = torch.arange(batch_size, device=attributes.device).view(-1, 1, 1, 1) * num_vertices
    flat = attributes.reshape(batch_size * num_vertices, channels)
    return _blend(flat, corner_vertices + offset, fragments)


def interpolate_face_varying(attributes: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Interpolate per-corner attributes (UVs with seams, flat normals) at every pixel.

    attributes: (F, 3, C) or (B, F, 3, C): one value per triangle corner.
    Returns (B, H, W, C); background pixels are 0.
    """
    face = fragments.triangle_id.clamp(min=0)
    channels = attributes.shape[-1]
    if attributes.dim() == 4:
        batch_size, num_faces = attributes.shape[:2]
        offset = torch.arange(batch_size, device=face.device).view(-1, 1, 1) * num_faces
        face = face + offset
    corner = (face * 3)[..., None] + torch.arange(3, device=face.device)
    return _blend(attributes.reshape(-1, channels), corner, fragments)
