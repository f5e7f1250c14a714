"""Vectorised z-buffer rasteriser in plain torch (CPU and CUDA), like nvdiffrast's `rasterize`.

Two passes:
1. coverage (no autograd, float32): every candidate triangle enumerates the pixel centres in
   its screen bounding box (flat index arithmetic, in bounded chunks, so a close-up triangle
   costs at most H*W pairs and never a Python loop), tests them against its edge functions
   and keeps the nearest one per pixel with a `scatter_reduce(amin)` on a packed
   (depth bits << 32 | triangle id) key;
2. barycentrics of the covered pixels recomputed from the screen vertices with autograd, so
   gradients flow to the vertex positions as through nvdiffrast's `rast` output.

Screen vertices are (u, v, z): u, v in pixels (OpenCV: pixel centres at integer coordinates,
y down) and z the camera depth. Triangles with any vertex at z <= near, non-finite, or of
zero screen area are dropped whole (no near-plane clipping; the fitter keeps the face in
front of the camera). The same function rasterises in UV space: see `uv_screen_vertices`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_EMPTY_KEY = torch.iinfo(torch.int64).max
# Pixel centres this close outside an edge (in barycentric units) still count as covered,
# so a centre exactly on an edge shared by two triangles never falls between both.
_EDGE_TOLERANCE = 1e-6
# Triangles whose doubled screen area is below this (pixels^2) are degenerate.
_MIN_DOUBLE_AREA = 1e-10
# At most this many (triangle, pixel) candidates are tested at once (bounds memory).
_PAIR_BUDGET = 1 << 21


@dataclass
class Fragments:
    """What each pixel sees.

    triangle_id: (B, H, W) long, index into the triangles, -1 for background.
    barycentrics: (B, H, W, 3) perspective-correct barycentrics (weights of the triangle's
        three corners for attributes that are linear in 3D), 0 on background;
        differentiable w.r.t. the screen vertices.
    depth: (B, H, W) camera depth z of the visible surface, 0 on background.
    """

    triangle_id: torch.Tensor
    barycentrics: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool coverage mask."""
        return self.triangle_id >= 0


def signed_double_area(corners: torch.Tensor) -> torch.Tensor:
    """Twice the signed screen area of triangles, (..., 3, >=2) -> (...).

    With image y down, a triangle whose outward normal faces the camera (counter-clockwise
    seen from the camera in a y-up view) has a negative value here.
    """
    u, v = corners[..., 0], corners[..., 1]
    return (u[..., 1] - u[..., 0]) * (v[..., 2] - v[..., 0]) - (u[..., 2] - u[..., 0]) * (
        v[..., 1] - v[..., 0]
    )


def edge_functions(corners: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Doubled signed sub-areas of triangles as seen from points.

    corners: (M, 3, >=2) screen corners (u, v, ...); x, y: (M,) points.
    Returns (M, 3): entry k is the doubled signed area of (point, corner k+1, corner k+2);
    the three sum to `signed_double_area`, and divided by it they are the screen-space
    barycentrics of the point.
    """
    u0, u1, u2 = (corners[..., 0] - x[:, None]).unbind(-1)
    v0, v1, v2 = (corners[..., 1] - y[:, None]).unbind(-1)
    return torch.stack([u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0], dim=-1)


def _candidate_triangles(
    screen: torch.Tensor,
    triangles: torch.Tensor,
    height: int,
    width: int,
    cull_backfaces: bool,
    near: float,
) -> tuple[torch.Tensor, ...]:
    """Triangles that can cover a pixel and what the coverage test needs of them.

    Returns face (N,) long, the pixel index of each one's box origin (x0, y0) in the flat
    (B*H*W) image, box width (N,) long, pixel counts (N,) long, and coefficients (N, 12)
    float32: per corner k the barycentric b_k = c_k + a_k * dx + e_k * dy at pixel
    (x0 + dx, y0 + dy), then 1/z_k.
    """
    batch_size, num_vertices = screen.shape[:2]
    num_faces = triangles.shape[0]
    offsets = torch.arange(batch_size, device=screen.device) * num_vertices
    index = (triangles.reshape(1, -1) + offsets[:, None]).reshape(-1)
    corners = screen.reshape(-1, 3).float().index_select(0, index).view(-1, 3, 3)  # (BF,3,3)
    area = signed_double_area(corners)
    u_min, u_max = corners[..., 0].aminmax(dim=-1)
    v_min, v_max = corners[..., 1].aminmax(dim=-1)
    # A NaN or infinite coordinate makes the sum non-finite: such triangles are dropped.
    valid = torch.isfinite(corners.view(-1, 9).sum(-1)) & (corners[..., 2].amin(-1) > near)
    valid &= area.abs() > _MIN_DOUBLE_AREA
    if cull_backfaces:
        valid &= area < 0
    valid &= (u_max >= 0) & (u_min <= width - 1) & (v_max >= 0) & (v_min <= height - 1)
    keep = valid.nonzero().squeeze(1)
    corners = corners.index_select(0, keep)
    x0 = u_min.index_select(0, keep).ceil().clamp(min=0)
    y0 = v_min.index_select(0, keep).ceil().clamp(min=0)
    nx = (u_max.index_select(0, keep).floor().clamp(max=width - 1) - x0 + 1).clamp(min=0).long()
    ny = (v_max.index_select(0, keep).floor().clamp(max=height - 1) - y0 + 1).clamp(min=0).long()
    # Barycentrics at the box origin and their steps per pixel in x and y (see
    # `edge_functions`), divided by the area; relative to the origin for float32 precision.
    at_origin = edge_functions(corners, x0, y0)
    u0, u1, u2 = corners[..., 0].unbind(-1)
    v0, v1, v2 = corners[..., 1].unbind(-1)
    step_x = torch.stack([v1 - v2, v2 - v0, v0 - v1], dim=-1)
    step_y = torch.stack([u2 - u1, u0 - u2, u1 - u0], dim=-1)
    inv_area = 1.0 / area.index_select(0, keep)[:, None]
    coeff = torch.cat(
        [at_origin * inv_area, step_x * inv_area, step_y * inv_area, 1.0 / corners[..., 2]],
        dim=1,
    )
    batch = keep.div(num_faces, rounding_mode="floor")
    origin = (batch * height + y0.long()) * width + x0.long()
    return keep - batch * num_faces, origin, nx, nx * ny, coeff


def _pair_chunks(counts: torch.Tensor) -> list[tuple[int, int]]:
    """Split candidates into runs [first, last) of at most _PAIR_BUDGET pixel pairs each
    (a single candidate over budget gets a run of its own; it covers at most H*W pixels)."""
    ends = counts.cumsum(0)
    total = int(ends[-1]) if ends.numel() else 0
    if total <= _PAIR_BUDGET:
        return [(0, counts.numel())] if total else []
    cuts = torch.searchsorted(
        ends, torch.arange(_PAIR_BUDGET, total, _PAIR_BUDGET, device=counts.device), right=True
    )
    bounds = sorted({0, counts.numel(), *cuts.tolist()})
    return list(zip(bounds[:-1], bounds[1:], strict=False))


@torch.no_grad()
def _nearest_triangle_keys(
    screen: torch.Tensor,
    triangles: torch.Tensor,
    height: int,
    width: int,
    cull_backfaces: bool,
    near: float,
) -> torch.Tensor:
    """(B*H*W,) int64 z-buffer of packed keys (depth bits << 32 | face), _EMPTY_KEY if none."""
    num_pixels = screen.shape[0] * height * width
    keys = torch.full((num_pixels,), _EMPTY_KEY, dtype=torch.int64, device=screen.device)
    face, origin, nx, counts, coeff = _candidate_triangles(
        screen, triangles, height, width, cull_backfaces, near
    )
    for first, last in _pair_chunks(counts):
        chunk_counts = counts[first:last]
        owner = torch.repeat_interleave(
            torch.arange(first, last, device=screen.device), chunk_counts
        )
        starts = chunk_counts.cumsum(0) - chunk_counts
        local = torch.arange(owner.numel(), device=screen.device) - torch.repeat_interleave(
            starts, chunk_counts
        )
        box_width = nx.index_select(0, owner)
        dy = local.div(box_width, rounding_mode="floor")
        dx = local - dy * box_width
        c = coeff.index_select(0, owner)
        bary = torch.addcmul(c[:, 0:3], c[:, 3:6], dx[:, None].float())
        bary.addcmul_(c[:, 6:9], dy[:, None].float())
        inv_depth = (bary * c[:, 9:12]).sum(-1)
        hit = ((bary.amin(-1) >= -_EDGE_TOLERANCE) & (inv_depth > 0)).nonzero().squeeze(1)
        owner_hit = owner.index_select(0, hit)
        depth = 1.0 / inv_depth.index_select(0, hit)
        key = (depth.view(torch.int32).long() << 32) | face.index_select(0, owner_hit)
        pixel = origin.index_select(0, owner_hit) + (
            dy.index_select(0, hit) * width + dx.index_select(0, hit)
        )
        keys.scatter_reduce_(0, pixel, key, reduce="amin")
    return keys


def rasterize(
    screen_vertices: torch.Tensor,
    triangles: torch.Tensor,
    image_size: tuple[int, int],
    cull_backfaces: bool = False,
    near: float = 1e-3,
) -> Fragments:
    """Rasterise triangles with a z-buffer (the nearest positive depth wins).

    screen_vertices: (B, V, 3) (u, v, z): pixel coordinates (pixel centres at integers, y
        down) and camera depth; gradients flow back to all three.
    triangles: (F, 3) long vertex indices.
    image_size: (H, W).
    cull_backfaces: drop triangles whose outward normal faces away from the camera, i.e.
        with a positive `signed_double_area` in pixel coordinates (counter-clockwise model
        triangles, as in OBJ files, are front-facing).
    near: triangles with a vertex at z <= near are dropped.
    Returns Fragments with perspective-correct barycentrics (see `Fragments`).
    """
    height, width = image_size
    batch_size, num_vertices = screen_vertices.shape[:2]
    keys = _nearest_triangle_keys(
        screen_vertices.detach(), triangles, height, width, cull_backfaces, near
    )
    pixel = (keys != _EMPTY_KEY).nonzero().squeeze(1)
    face = keys[pixel] & 0xFFFFFFFF
    batch = pixel.div(height * width, rounding_mode="floor")
    y = pixel.div(width, rounding_mode="floor") % height
    x = pixel % width

    vertex = triangles.index_select(0, face) + (batch * num_vertices)[:, None]
    flat = screen_vertices.reshape(batch_size * num_vertices, 3)
    corners = flat.index_select(0, vertex.view(-1)).view(-1, 3, 3)  # (M, 3, 3)
    sub = edge_functions(corners, x.to(corners.dtype), y.to(corners.dtype))
    weights = sub / corners[..., 2]  # screen-linear weights divided by z: perspective-correct
    weight_sum = weights.sum(-1, keepdim=True)
    bary = weights / weight_sum
    depth = sub.sum(-1, keepdim=True) / weight_sum

    num_pixels = batch_size * height * width
    dtype, device = screen_vertices.dtype, screen_vertices.device
    triangle_id = torch.full((num_pixels,), -1, dtype=torch.long, device=device)
    triangle_id[pixel] = face
    bary_dense = torch.zeros(num_pixels, 3, dtype=dtype, device=device).index_copy(0, pixel, bary)
    depth_dense = torch.zeros(num_pixels, 1, dtype=dtype, device=device).index_copy(0, pixel, depth)
    return Fragments(
        triangle_id=triangle_id.view(batch_size, height, width),
        barycentrics=bary_dense.view(batch_size, height, width, 3),
        depth=depth_dense.view(batch_size, height, width),
    )


def uv_screen_vertices(
    triangle_uvs: torch.Tensor, texture_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen vertices and triangles that rasterise a mesh into its own UV layout.

    triangle_uvs: (F, 3, 2) per-corner UVs, OBJ convention (origin bottom-left, v up).
    texture_size: (Ht, Wt); texel (i, j) of a row-0-at-top texture image has its centre at
        uv = ((j + 0.5) / Wt, 1 - (i + 0.5) / Ht), matching `sample_texture`.
    Returns screen (1, 3F, 3) at constant depth 1 and triangles (F, 3) = arange(3F), so
    `rasterize(screen, triangles, texture_size)` gives the mesh's face index per texel and
    (linear) barycentrics.
    """
    height, width = texture_size
    uv = triangle_uvs.reshape(-1, 2)
    x = uv[:, 0] * width - 0.5
    y = (1.0 - uv[:, 1]) * height - 0.5
    screen = torch.stack([x, y, torch.ones_like(x)], dim=-1)[None]
    num_faces = triangle_uvs.shape[0]
    triangles = torch.arange(3 * num_faces, device=triangle_uvs.device).view(num_faces, 3)
    return screen, triangles
