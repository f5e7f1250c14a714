"""Analytic silhouette antialiasing (the model of nvdiffrast's `antialias`, own code).

Why this and not a soft-rasteriser sigmoid: it changes only the pixels that straddle a
silhouette edge, leaves the interior exactly as rasterised (so photometric losses see
sharp textures), needs no blur-radius hyper-parameter, and its gradient w.r.t. the edge's
vertex positions is the derivative of the true pixel coverage, i.e. it points the right way
for silhouette alignment.

For each pair of horizontally or vertically adjacent pixels that see different triangles,
the nearer pixel's triangle is the occluder; if the segment between the two pixel centres
leaves that triangle through a silhouette edge (a mesh boundary edge, or one whose
neighbouring triangle faces the other way on screen), the crossing point t in [0, 1] along
the segment splits the two pixels' 1-pixel-wide footprints, and the colours are blended by
the covered fractions (a box filter across the edge). Everything is vectorised over pairs.
"""

from __future__ import annotations

import torch

from engine.render.rasterize import Fragments, edge_functions, signed_double_area


def triangle_neighbours(triangles: torch.Tensor) -> torch.Tensor:
    """For each triangle edge, the other triangle sharing it.

    triangles: (F, 3) long. Edge k of a triangle is the one opposite corner k, i.e. between
    corners k+1 and k+2. Returns (F, 3) long: the neighbour's index, -1 on a boundary edge
    (on a non-manifold edge, one of the others). Depends on topology only: compute once.
    """
    first = triangles[:, [1, 2, 0]]
    second = triangles[:, [2, 0, 1]]
    num_vertices = int(triangles.max()) + 1
    key = (torch.minimum(first, second) * num_vertices + torch.maximum(first, second)).reshape(-1)
    order = torch.argsort(key, stable=True)
    pair = (key[order][:-1] == key[order][1:]).nonzero().squeeze(1)
    neighbours = torch.full_like(key, -1)
    neighbours[order[pair]] = order[pair + 1] // 3
    neighbours[order[pair + 1]] = order[pair] // 3
    return neighbours.view(-1, 3)


def antialias(
    color: torch.Tensor,
    fragments: Fragments,
    screen_vertices: torch.Tensor,
    triangles: torch.Tensor,
    neighbours: torch.Tensor | None = None,
) -> torch.Tensor:
    """Blend colours across silhouette edges by analytic pixel coverage.

    color: (B, H, W, C) rendered image (whatever the background holds is blended in).
    fragments: from `rasterize(screen_vertices, triangles, (H, W))`.
    screen_vertices: (B, V, 3) (u, v, z); gradients reach the silhouette edges' vertices.
    triangles: (F, 3) long. neighbours: `triangle_neighbours(triangles)`, computed here if
        None (pass it in a loop to save the sort).
    Returns (B, H, W, C).
    """
    if neighbours is None:
        neighbours = triangle_neighbours(triangles)
    batch_size, height, width, channels = color.shape
    num_vertices = screen_vertices.shape[1]
    ids = fragments.triangle_id
    tid = ids.reshape(-1)
    depth = fragments.depth.detach().reshape(-1)
    pixel = torch.arange(tid.numel(), device=tid.device).view_as(ids)
    first = torch.cat(
        [
            pixel[:, :, :-1][ids[:, :, :-1] != ids[:, :, 1:]],
            pixel[:, :-1, :][ids[:, :-1, :] != ids[:, 1:, :]],
        ]
    )
    num_horizontal = first.numel() - int((ids[:, :-1, :] != ids[:, 1:, :]).sum())
    step = torch.full_like(first, width)
    step[:num_horizontal] = 1
    second = first + step
    with torch.no_grad():
        t_first, t_second = tid.index_select(0, first), tid.index_select(0, second)
        first_occludes = (t_second < 0) | (
            (t_first >= 0) & (depth.index_select(0, first) <= depth.index_select(0, second))
        )
        near = torch.where(first_occludes, first, second)
        far = torch.where(first_occludes, second, first)
        face = tid.index_select(0, near)
        batch = near.div(height * width, rounding_mode="floor")
        vertex = triangles.index_select(0, face) + (batch * num_vertices)[:, None]

    flat_screen = screen_vertices.reshape(batch_size * num_vertices, 3)
    corners = flat_screen.index_select(0, vertex.view(-1)).view(-1, 3, 3)
    dtype = corners.dtype
    near_x, near_y = near % width, near.div(width, rounding_mode="floor") % height
    far_x, far_y = far % width, far.div(width, rounding_mode="floor") % height
    inside_near = edge_functions(corners, near_x.to(dtype), near_y.to(dtype))
    orientation = inside_near.detach().sum(-1, keepdim=True).sign()
    inside_near = inside_near * orientation
    inside_far = edge_functions(corners, far_x.to(dtype), far_y.to(dtype)) * orientation
    exits = inside_far < 0
    # Where the segment near -> far crosses each edge's line (only edges it exits through).
    denominator = torch.where(exits, inside_near - inside_far, torch.ones_like(inside_far))
    crossing = torch.where(exits, inside_near / denominator, torch.full_like(inside_far, 2.0))
    t, edge = crossing.min(-1)

    with torch.no_grad():
        other = neighbours.view(-1).index_select(0, face * 3 + edge)
        other_vertex = (
            triangles.index_select(0, other.clamp(min=0)) + (batch * num_vertices)[:, None]
        )
        other_corners = flat_screen.detach().index_select(0, other_vertex.view(-1)).view(-1, 3, 3)
        other_orientation = signed_double_area(other_corners).sign()
        silhouette = (other < 0) | (other_orientation != orientation.squeeze(1))
        keep = ((t <= 1.0) & silhouette).nonzero().squeeze(1)

    t = t.index_select(0, keep).clamp(0.0, 1.0)[:, None]
    near, far = near.index_select(0, keep), far.index_select(0, keep)
    flat_color = color.reshape(-1, channels)
    near_color, far_color = flat_color.index_select(0, near), flat_color.index_select(0, far)
    # Footprints: near pixel [-0.5, 0.5], far pixel [0.5, 1.5]; the occluder covers [.., t].
    near_delta = (0.5 - t).clamp(min=0.0) * (far_color - near_color)
    far_delta = (t - 0.5).clamp(min=0.0) * (near_color - far_color)
    out = flat_color.index_add(0, near, near_delta).index_add(0, far, far_delta)
    return out.view(batch_size, height, width, channels)
