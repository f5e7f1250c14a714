"""Rasteriser: coverage, z-buffer, culling, robustness, perspective-correct barycentrics,
UV-space rasterisation and gradients w.r.t. screen vertices."""

import importlib

import pytest
import torch

from engine.render import interpolate, rasterize, signed_double_area, uv_screen_vertices


def pixel_grid(height, width, dtype=torch.float64):
    y, x = torch.meshgrid(
        torch.arange(height, dtype=dtype), torch.arange(width, dtype=dtype), indexing="ij"
    )
    return x, y


def inside_reference(corners, height, width):
    """(H, W) bool: pixel centres inside a screen triangle, by explicit edge tests."""
    x, y = pixel_grid(height, width)
    (u0, v0), (u1, v1), (u2, v2) = corners[:, :2].tolist()

    def edge(ua, va, ub, vb):
        return (ub - ua) * (y - va) - (vb - va) * (x - ua)

    e = torch.stack([edge(u0, v0, u1, v1), edge(u1, v1, u2, v2), edge(u2, v2, u0, v0)])
    return (e >= 0).all(0) | (e <= 0).all(0)


def unproject(screen, focal, centre):
    """Camera-space points of (u, v, z) screen vertices for a pinhole (focal, centre)."""
    z = screen[..., 2]
    return torch.stack(
        [(screen[..., 0] - centre) * z / focal, (screen[..., 1] - centre) * z / focal, z], -1
    )


def test_coverage_matches_pixel_centre_inside_test():
    torch.manual_seed(1)
    for _ in range(20):
        corners = torch.rand(3, 3, dtype=torch.float64) * torch.tensor(
            [40.0, 30.0, 3.0]
        ) + torch.tensor([-5.0, -5.0, 1.0])
        fragments = rasterize(corners[None], torch.tensor([[0, 1, 2]]), (24, 32))
        assert torch.equal(fragments.mask[0], inside_reference(corners, 24, 32))


def test_barycentrics_are_perspective_correct():
    screen = torch.tensor(
        [[[2.3, 1.7, 2.0], [27.6, 4.2, 6.0], [5.1, 22.8, 9.0]]], dtype=torch.float64
    )
    triangles = torch.tensor([[0, 1, 2]])
    fragments = rasterize(screen, triangles, (24, 32))
    mask = fragments.mask[0]
    assert mask.sum() > 100
    points = interpolate(unproject(screen, 20.0, 16.0), fragments, triangles)[0][mask]
    x, y = pixel_grid(24, 32)
    # Interpolated 3D points project back exactly onto their pixel centres ...
    torch.testing.assert_close(points[:, 0] / points[:, 2] * 20.0 + 16.0, x[mask])
    torch.testing.assert_close(points[:, 1] / points[:, 2] * 20.0 + 16.0, y[mask])
    # ... and the depth is theirs.
    torch.testing.assert_close(fragments.depth[0][mask], points[:, 2])
    torch.testing.assert_close(
        fragments.barycentrics[0][mask].sum(-1), torch.ones(int(mask.sum()), dtype=torch.float64)
    )
    assert (fragments.barycentrics[0][~mask] == 0).all() and (fragments.depth[0][~mask] == 0).all()


def test_zbuffer_keeps_the_nearest_of_two_overlapping_triangles():
    near = [[2.0, 2.0, 3.0], [28.0, 3.0, 3.0], [4.0, 20.0, 3.0]]
    far = [[1.0, 1.0, 5.0], [30.0, 1.0, 5.0], [15.0, 22.0, 5.0]]
    for order in ([near, far], [far, near]):
        screen = torch.tensor([order[0] + order[1]])
        triangles = torch.tensor([[0, 1, 2], [3, 4, 5]])
        fragments = rasterize(screen, triangles, (24, 32))
        near_index = 0 if order[0] is near else 1
        covered_by_near = inside_reference(torch.tensor(near), 24, 32)
        covered_by_far = inside_reference(torch.tensor(far), 24, 32)
        ids = fragments.triangle_id[0]
        assert (ids[covered_by_near] == near_index).all()
        assert (ids[covered_by_far & ~covered_by_near] == 1 - near_index).all()
        depth = fragments.depth[0][covered_by_near]
        torch.testing.assert_close(depth, torch.full_like(depth, 3.0))


def test_backface_culling_drops_triangles_facing_away():
    # Seen from the camera (x right, y down, z forward) this triangle's outward normal
    # (counter-clockwise winding) points at the camera: camera-space normal has z < 0.
    camera_space = torch.tensor([[0.0, 0.0, 5.0], [0.0, 1.0, 5.0], [1.0, 0.0, 5.0]])
    normal = torch.linalg.cross(
        camera_space[1] - camera_space[0], camera_space[2] - camera_space[0]
    )
    assert normal[2] < 0
    screen = torch.cat(
        [camera_space[:, :2] / camera_space[:, 2:] * 20.0 + 4.0, camera_space[:, 2:]], 1
    )[None]
    front = torch.tensor([[0, 1, 2]])
    back = torch.tensor([[0, 2, 1]])
    assert signed_double_area(screen[0][front[0]]) < 0
    assert rasterize(screen, front, (12, 12), cull_backfaces=True).mask.sum() > 5
    assert rasterize(screen, back, (12, 12), cull_backfaces=True).mask.sum() == 0
    assert rasterize(screen, back, (12, 12)).mask.sum() > 5


def test_triangles_behind_the_camera_or_degenerate_are_dropped_safely():
    screen = torch.tensor(
        [
            [
                [1.0, 1.0, 2.0],
                [10.0, 1.0, -1.0],
                [1.0, 10.0, 2.0],  # crosses the near plane
                [1.0, 1.0, 2.0],
                [5.0, 5.0, 2.0],
                [9.0, 9.0, 2.0],  # zero area
                [1.0, 1.0, float("nan")],
                [10.0, 1.0, 2.0],
                [1.0, 10.0, 2.0],  # not finite
            ]
        ],
        requires_grad=True,
    )
    triangles = torch.arange(9).view(3, 3)
    fragments = rasterize(screen, triangles, (12, 12))
    assert fragments.mask.sum() == 0
    fragments.barycentrics.sum().backward()
    assert torch.isfinite(screen.grad).all()


def test_close_up_triangle_covers_the_image_and_chunking_is_exact(monkeypatch):
    # A huge triangle (a close-up) plus small ones; rerun with a tiny pair budget so the
    # coverage search runs in many chunks: same result, bounded memory.
    torch.manual_seed(3)
    big = torch.tensor([[-500.0, -400.0, 10.0], [900.0, -300.0, 10.0], [-200.0, 800.0, 10.0]])
    small = torch.rand(30, 3) * torch.tensor([64.0, 48.0, 5.0]) + torch.tensor([0.0, 0.0, 1.0])
    screen = torch.cat([big, small])[None]
    triangles = torch.cat([torch.tensor([[0, 1, 2]]), torch.arange(3, 33).view(10, 3)])
    full = rasterize(screen, triangles, (48, 64))
    assert full.mask.all()
    monkeypatch.setattr(importlib.import_module("engine.render.rasterize"), "_PAIR_BUDGET", 97)
    chunked = rasterize(screen, triangles, (48, 64))
    assert torch.equal(chunked.triangle_id, full.triangle_id)
    torch.testing.assert_close(chunked.barycentrics, full.barycentrics)


def test_batches_are_independent():
    torch.manual_seed(4)
    screen = torch.rand(3, 12, 3) * torch.tensor([32.0, 24.0, 4.0]) + torch.tensor([0.0, 0.0, 1.0])
    triangles = torch.arange(12).view(4, 3)
    batched = rasterize(screen, triangles, (24, 32))
    for b in range(3):
        single = rasterize(screen[b : b + 1], triangles, (24, 32))
        assert torch.equal(batched.triangle_id[b], single.triangle_id[0])
        torch.testing.assert_close(batched.barycentrics[b], single.barycentrics[0])


def test_uv_space_rasterisation_hits_texel_centres():
    # Two triangles tiling the unit square in UV: every texel is covered exactly once, and
    # interpolating the UVs gives each texel's centre in OBJ convention.
    uvs = torch.tensor([[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 1], [0, 1]]], dtype=torch.float64)
    screen, triangles = uv_screen_vertices(uvs, (8, 16))
    fragments = rasterize(screen, triangles, (8, 16))
    assert fragments.mask.all()
    uv = interpolate(uvs.reshape(-1, 2), fragments, triangles)[0]
    x, y = pixel_grid(8, 16)
    torch.testing.assert_close(uv[..., 0], (x + 0.5) / 16)
    torch.testing.assert_close(uv[..., 1], 1.0 - (y + 0.5) / 8)


@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_wrt_screen_vertices_match_finite_differences(seed):
    # Interior pixels: a perturbation of 1e-6 px changes no pixel's coverage, so the
    # rendered attributes are smooth in the vertices and gradcheck applies.
    torch.manual_seed(seed)
    screen = torch.tensor(
        [[[1.3, 2.2, 2.0], [14.7, 1.4, 3.0], [3.1, 11.6, 2.5], [13.2, 12.9, 4.0]]],
        dtype=torch.float64,
    ) + 0.1 * torch.rand(1, 4, 3, dtype=torch.float64)
    triangles = torch.tensor([[0, 1, 2], [1, 3, 2]])
    attributes = torch.randn(1, 4, 2, dtype=torch.float64)

    def render(screen, attributes):
        fragments = rasterize(screen, triangles, (14, 16))
        return interpolate(attributes, fragments, triangles), fragments.depth

    assert torch.autograd.gradcheck(render, (screen.requires_grad_(), attributes.requires_grad_()))
