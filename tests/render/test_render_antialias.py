"""Silhouette antialiasing: exact box-filter coverage across a straight edge, no blending
across interior edges, occluding silhouettes, gradients reaching the edge's vertices."""

import torch

from engine.render import antialias, rasterize, triangle_neighbours


def rectangle(right_edge: float, dtype=torch.float64):
    """Screen quad (two triangles) from x = -5 to `right_edge`, y from 1.5 to 9.5 (half-pixel
    boundaries: the top and bottom edges need no blending)."""
    screen = torch.tensor(
        [[[-5.0, 1.5, 2.0], [right_edge, 1.5, 2.0], [right_edge, 9.5, 2.0], [-5.0, 9.5, 2.0]]],
        dtype=dtype,
    )
    return screen, torch.tensor([[0, 1, 2], [0, 2, 3]])


def soft_mask(screen, triangles, size=(12, 16)):
    fragments = rasterize(screen, triangles, size)
    mask = fragments.mask[..., None].to(screen.dtype)
    return antialias(mask, fragments, screen, triangles)[..., 0], fragments


def test_triangle_neighbours():
    triangles = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6]])
    neighbours = triangle_neighbours(triangles)
    # Edge k is opposite corner k: triangle 0's edge 1 is (2, 0), shared with triangle 1,
    # whose edge 2 is (0, 2).
    expected = torch.tensor([[-1, 1, -1], [-1, -1, 0], [-1, -1, -1]])
    assert torch.equal(neighbours, expected)


def test_straight_edge_gets_exact_pixel_coverage():
    for edge in (10.3, 10.7, 10.5, 11.05):
        screen, triangles = rectangle(edge)
        mask, fragments = soft_mask(screen, triangles)
        rows = fragments.mask[0].any(-1)
        # Each covered row's coverage from the image border (x = -0.5) to the edge.
        torch.testing.assert_close(
            mask[0][rows].sum(-1), torch.full((int(rows.sum()),), edge + 0.5, dtype=torch.float64)
        )


def test_interior_edges_are_not_blended():
    screen, triangles = rectangle(10.3)
    fragments = rasterize(screen, triangles, (12, 16))
    colour = fragments.triangle_id[..., None].to(torch.float64)  # differs across the diagonal
    blended = antialias(colour, fragments, screen, triangles)
    inside = fragments.mask[0] & (torch.arange(16) < 9)
    torch.testing.assert_close(blended[0][inside], colour[0][inside])


def test_occluding_silhouette_blends_over_the_surface_behind():
    near, triangles = rectangle(6.25)
    far = torch.tensor(
        [[[-5.0, -5.0, 8.0], [30.0, -5.0, 8.0], [30.0, 30.0, 8.0], [-5.0, 30.0, 8.0]]],
        dtype=torch.float64,
    )
    screen = torch.cat([near, far], 1)
    both = torch.cat([triangles, triangles + 4])
    fragments = rasterize(screen, both, (12, 16))
    is_near = (fragments.triangle_id < 2)[..., None].to(torch.float64)
    blended = antialias(is_near, fragments, screen, both)[0]
    rows = fragments.triangle_id[0].lt(2).any(-1)
    # Pixel 6 is covered by the near quad over [5.5, 6.25]: 0.75 of it.
    torch.testing.assert_close(blended[rows, 6, 0], torch.full((int(rows.sum()),), 0.75).double())
    torch.testing.assert_close(blended[rows, 7, 0], torch.zeros(int(rows.sum())).double())


def test_silhouette_gradient_is_the_coverage_derivative():
    screen, triangles = rectangle(10.3)
    screen.requires_grad_(True)
    mask, fragments = soft_mask(screen, triangles)
    mask.sum().backward()
    rows = int(fragments.mask[0].any(-1).sum())
    # Moving the right edge by dx adds dx coverage in every covered row.
    torch.testing.assert_close(
        screen.grad[0, 1, 0] + screen.grad[0, 2, 0], torch.tensor(float(rows)).double()
    )


def test_antialias_gradients_match_finite_differences():
    screen = torch.tensor(
        [[[1.3, 1.2, 2.0], [13.7, 2.4, 3.0], [4.1, 10.6, 2.5]]], dtype=torch.float64
    ).requires_grad_(True)
    triangles = torch.tensor([[0, 1, 2]])
    colour = torch.rand(1, 12, 16, 3, dtype=torch.float64).requires_grad_(True)

    def render(screen, colour):
        fragments = rasterize(screen, triangles, (12, 16))
        lit = colour * fragments.mask[..., None]
        return antialias(lit, fragments, screen, triangles)

    # fast_mode checks random projections of the Jacobian (the full one costs ~600 passes).
    assert torch.autograd.gradcheck(render, (screen, colour), fast_mode=True)
