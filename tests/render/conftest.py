"""Fixtures for the renderer tests: small meshes."""

import pytest
import torch


@pytest.fixture
def bumpy_grid() -> tuple[torch.Tensor, torch.Tensor]:
    """A small bumpy float64 height-field mesh facing +Z (model space, cm), for gradients.

    Returns vertices (V, 3) over [-1, 1]^2 with z = a smooth bump, and triangles (F, 3)
    counter-clockwise seen from +Z.
    """
    n = 6
    axis = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    z = 0.4 * torch.exp(-2.0 * (x**2 + y**2)) + 0.05 * x
    vertices = torch.stack([x, y, z], -1).reshape(-1, 3)
    index = torch.arange(n * n).view(n, n)
    a, b = index[:-1, :-1].reshape(-1), index[:-1, 1:].reshape(-1)
    c, d = index[1:, :-1].reshape(-1), index[1:, 1:].reshape(-1)
    triangles = torch.cat([torch.stack([a, b, d], 1), torch.stack([a, d, c], 1)])
    return vertices, triangles
