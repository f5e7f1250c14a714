"""Normals and order-2 spherical-harmonics Lambertian shading.

Normals are whatever space the caller's vertices are in; the fitter passes camera-space
vertices (x right, y down, z forward), so a surface facing the camera has a normal with
negative z, and the SH coefficients describe light in camera space.

SH convention (Ramamoorthi & Hanrahan 2001, "An Efficient Representation for Irradiance
Environment Maps", eq. 3 and the constants below it): real SH Y_lm in the order
(0,0), (1,-1), (1,0), (1,1), (2,-2), (2,-1), (2,0), (2,1), (2,2) with
Y_1,-1 ~ y, Y_1,0 ~ z, Y_1,1 ~ x. The Lambertian convolution constants
A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4 are folded into `sh_basis`, divided by pi, so
    radiance = albedo * sum_k sh_basis(n)_k * L_k
with L_k the SH coefficients of the incoming radiance: a uniform environment of radiance 1
(L_0 = 1 / Y_00 = `SH_UNIFORM_LIGHT`, the rest 0) shades every normal with its albedo.
"""

from __future__ import annotations

import math

import torch

_Y00 = 0.5 * math.sqrt(1.0 / math.pi)  # 0.282095
_Y1 = math.sqrt(3.0 / (4.0 * math.pi))  # 0.488603
_Y2_XY = 0.5 * math.sqrt(15.0 / math.pi)  # 1.092548, also for yz and xz
_Y20 = 0.25 * math.sqrt(5.0 / math.pi)  # 0.315392, times (3 z^2 - 1)
_Y22 = 0.25 * math.sqrt(15.0 / math.pi)  # 0.546274, times (x^2 - y^2)
_A0, _A1, _A2 = 1.0, 2.0 / 3.0, 1.0 / 4.0  # A_l / pi

SH_UNIFORM_LIGHT = 1.0 / _Y00
_NORMAL_EPS = 1e-12


def vertex_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals.

    vertices: (B, V, 3). triangles: (F, 3) long, counter-clockwise seen from outside.
    Returns (B, V, 3); a vertex on no triangle gets a zero normal.
    """
    batch_size, num_vertices = vertices.shape[:2]
    offset = torch.arange(batch_size, device=vertices.device)[:, None] * num_vertices
    flat = vertices.reshape(-1, 3)
    corner = [(triangles[:, k][None] + offset).reshape(-1) for k in range(3)]
    p0, p1, p2 = (flat.index_select(0, index) for index in corner)
    # The cross product's length is twice the area: summing it weights by area.
    face_normals = torch.linalg.cross(p1 - p0, p2 - p0)
    normals = torch.zeros_like(flat)
    for index in corner:
        normals = normals.index_add(0, index, face_normals)
    normals = normals.view(batch_size, num_vertices, 3)
    return normals / normals.norm(dim=-1, keepdim=True).clamp(min=_NORMAL_EPS)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """Order-2 SH irradiance basis with the Lambertian constants folded in (module doc).

    normals: (..., 3) unit vectors. Returns (..., 9).
    """
    x, y, z = normals.unbind(-1)
    return torch.stack(
        [
            torch.full_like(x, _A0 * _Y00),
            _A1 * _Y1 * y,
            _A1 * _Y1 * z,
            _A1 * _Y1 * x,
            _A2 * _Y2_XY * x * y,
            _A2 * _Y2_XY * y * z,
            _A2 * _Y20 * (3.0 * z * z - 1.0),
            _A2 * _Y2_XY * x * z,
            _A2 * _Y22 * (x * x - y * y),
        ],
        dim=-1,
    )


def shade_sh(
    albedo: torch.Tensor, normals: torch.Tensor, sh_coefficients: torch.Tensor
) -> torch.Tensor:
    """Lambertian radiance under SH lighting.

    albedo: (B, H, W, C). normals: (B, H, W, 3), any length (renormalised here, since
        interpolated normals are shorter than 1). sh_coefficients: (B, 9, C).
    Returns (B, H, W, C) = albedo * irradiance / pi.
    """
    unit = normals / normals.norm(dim=-1, keepdim=True).clamp(min=_NORMAL_EPS)
    return albedo * sh_shading(unit, sh_coefficients)


def sh_shading(unit_normals: torch.Tensor, sh_coefficients: torch.Tensor) -> torch.Tensor:
    """The shading factor alone: (B, H, W, 3) unit normals -> (B, H, W, C) irradiance / pi."""
    basis = sh_basis(unit_normals)
    batch_size = basis.shape[0]
    flat = basis.reshape(batch_size, -1, 9) @ sh_coefficients  # (B, HW, C)
    return flat.view(*basis.shape[:-1], sh_coefficients.shape[-1])


def uniform_sh(
    batch_size: int,
    intensity: float = 1.0,
    channels: int = 3,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(B, 9, C) SH coefficients of a uniform environment: shading = intensity * albedo."""
    sh = torch.zeros(batch_size, 9, channels, device=device, dtype=dtype)
    sh[:, 0] = intensity * SH_UNIFORM_LIGHT
    return sh
