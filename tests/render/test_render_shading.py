"""Shading: area-weighted vertex normals, the SH irradiance basis against a numerical
integral of the clamped cosine, and gradients; texture lookup orientation and gradients."""

import math

import torch

from engine.render import (
    SH_UNIFORM_LIGHT,
    sample_texture,
    sh_basis,
    shade_sh,
    uniform_sh,
    vertex_normals,
)


def raw_real_sh(d: torch.Tensor) -> torch.Tensor:
    """(..., 3) unit directions -> (..., 9) orthonormal real SH up to order 2, same order as
    the renderer: (0,0), (1,-1)~y, (1,0)~z, (1,1)~x, (2,-2)~xy, (2,-1)~yz, (2,0), (2,1)~xz,
    (2,2)."""
    x, y, z = d.unbind(-1)
    c1, c2 = math.sqrt(3 / (4 * math.pi)), math.sqrt(15 / (4 * math.pi))
    return torch.stack(
        [
            torch.full_like(x, math.sqrt(1 / (4 * math.pi))),
            c1 * y,
            c1 * z,
            c1 * x,
            c2 * x * y,
            c2 * y * z,
            math.sqrt(5 / (16 * math.pi)) * (3 * z * z - 1),
            c2 * x * z,
            math.sqrt(15 / (16 * math.pi)) * (x * x - y * y),
        ],
        -1,
    )


def test_raw_sh_reference_is_orthonormal():
    # Guards the reference itself: a Monte-Carlo-free midpoint quadrature over the sphere.
    theta = (torch.arange(300, dtype=torch.float64) + 0.5) * math.pi / 300
    phi = (torch.arange(600, dtype=torch.float64) + 0.5) * 2 * math.pi / 600
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    d = torch.stack([t.sin() * p.cos(), t.sin() * p.sin(), t.cos()], -1).reshape(-1, 3)
    w = (t.sin() * (math.pi / 300) * (2 * math.pi / 600)).reshape(-1)
    y = raw_real_sh(d)
    gram = (y * w[:, None]).T @ y
    torch.testing.assert_close(gram, torch.eye(9, dtype=torch.float64), atol=1e-4, rtol=0)


def test_sh_basis_gives_lambertian_radiance_of_the_sh_environment():
    # radiance(n) = (1/pi) * integral L(w) max(0, n.w) dw for L(w) = sum_k L_k Y_k(w).
    torch.manual_seed(0)
    theta = (torch.arange(400, dtype=torch.float64) + 0.5) * math.pi / 400
    phi = (torch.arange(800, dtype=torch.float64) + 0.5) * 2 * math.pi / 800
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    d = torch.stack([t.sin() * p.cos(), t.sin() * p.sin(), t.cos()], -1).reshape(-1, 3)
    w = (t.sin() * (math.pi / 400) * (2 * math.pi / 800)).reshape(-1)
    light = torch.randn(9, dtype=torch.float64)
    radiance_in = raw_real_sh(d) @ light
    normals = torch.nn.functional.normalize(torch.randn(6, 3, dtype=torch.float64), dim=-1)
    cosine = (normals @ d.T).clamp(min=0)
    expected = (cosine * radiance_in * w).sum(-1) / math.pi
    torch.testing.assert_close(sh_basis(normals) @ light, expected, atol=2e-4, rtol=0)


def test_uniform_light_shades_with_the_albedo():
    albedo = torch.rand(2, 4, 5, 3)
    normals = torch.randn(2, 4, 5, 3)
    torch.testing.assert_close(shade_sh(albedo, normals, uniform_sh(2)), albedo)
    assert abs(uniform_sh(1)[0, 0, 0].item() - SH_UNIFORM_LIGHT) < 1e-6


def test_shading_gradients_match_finite_differences():
    torch.manual_seed(1)
    albedo = torch.rand(1, 3, 4, 3, dtype=torch.float64, requires_grad=True)
    normals = torch.randn(1, 3, 4, 3, dtype=torch.float64, requires_grad=True)
    sh = torch.randn(1, 9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(shade_sh, (albedo, normals, sh))


def test_vertex_normals_are_area_weighted_and_outward():
    # A roof: a big triangle facing +z and a small one facing +x share vertices 0 and 1.
    vertices = torch.tensor(
        [[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-4.0, 0.0, 0.0], [0.0, 0.0, -1.0]]],
        dtype=torch.float64,
    )
    triangles = torch.tensor([[0, 1, 2], [0, 3, 1]])
    normals = vertex_normals(vertices, triangles)[0]
    # Face normals: (0,0,1) with doubled area 4 and (1,0,0) with doubled area 1.
    expected_shared = torch.nn.functional.normalize(torch.tensor([1.0, 0.0, 4.0]), dim=0)
    torch.testing.assert_close(normals[0], expected_shared.double())
    torch.testing.assert_close(normals[1], expected_shared.double())
    torch.testing.assert_close(normals[2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(normals[3], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))


def test_texture_lookup_uses_obj_convention():
    texture = torch.arange(2 * 4 * 6, dtype=torch.float64).view(1, 2, 4, 6)
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(6), indexing="ij")
    uv = torch.stack([(cols + 0.5) / 6, 1.0 - (rows + 0.5) / 4], -1)[None].double()
    sampled = sample_texture(texture, uv)
    # Texel centres return the texels: v = 1 is the top row (row 0) of the image.
    torch.testing.assert_close(sampled, texture.permute(0, 2, 3, 1))
    # Half-way between two texel centres is their mean (bilinear).
    between = sample_texture(texture, torch.tensor([[[[1.0 / 6, 1.0 - 0.5 / 4]]]]).double())
    torch.testing.assert_close(between[0, 0, 0], texture[0, :, 0, 0:2].mean(-1))


def test_texture_gradients_match_finite_differences():
    torch.manual_seed(2)
    texture = torch.rand(1, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    uv = (0.1 + 0.8 * torch.rand(1, 4, 3, 2, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(sample_texture, (texture, uv))
