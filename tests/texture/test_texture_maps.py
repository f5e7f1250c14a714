"""Normal, roughness and AO maps (engine/texture/maps.py) on the real face model."""

import numpy as np
import pytest
import torch

from engine.render import vertex_normals
from engine.texture import maps

torch.set_num_threads(1)


def test_tangent_normals_follow_opengl_convention():
    """A pit (lower height) in the middle: texels right of it slope up to the right, so
    their normals lean left (-x); texels above it (image rows up = +v) lean down (-y)."""
    size = 33
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    height = -torch.exp(-((xx - 16.0) ** 2 + (yy - 16.0) ** 2) / 20.0)
    normals = maps.tangent_normals(height)
    assert torch.allclose(normals.norm(dim=-1), torch.ones(size, size), atol=1e-5)
    right, above, centre = normals[16, 20], normals[12, 16], normals[16, 16]
    assert right[0] < -0.05 and abs(right[1]) < 1e-6
    assert above[1] < -0.05 and abs(above[0]) < 1e-6
    assert torch.allclose(centre, torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    assert torch.all(normals[..., 2] > 0)


@pytest.mark.slow
def test_ambient_occlusion_is_darker_in_creases_than_on_open_skin(face_model):
    vertices = face_model.neutral
    normals = vertex_normals(vertices[None], face_model.triangles)[0]
    occluders = face_model.triangles[torch.cat(
        [face_model.region_triangles(p) for p in maps._OCCLUDERS])]
    ao = maps.vertex_ambient_occlusion(vertices, normals, occluders, directions=16,
                                       resolution=256)
    landmarks = face_model.landmark_vertices
    nose_tip, forehead_side = ao[landmarks[30]], ao[landmarks[19]]
    mouth_corners = ao[landmarks[[60, 64]]]  # inner lip corners: inside the mouth slit
    assert nose_tip > 0.85 and forehead_side > 0.75
    assert torch.all(mouth_corners < nose_tip - 0.25), mouth_corners
    assert torch.all((ao >= 0) & (ao <= 1))


def test_roughness_differs_by_region(face_model):
    vertices = face_model.neutral
    normals = vertex_normals(vertices[None], face_model.triangles)[0]
    landmarks = vertices[face_model.landmark_vertices]
    points = {  # landmark vertices in each region (iBUG 68 numbering)
        "lips": [51, 57], "brows": [19, 24], "tzone": [29, 30],
        "skin": [3, 13],  # lower cheeks near the jaw line
    }
    for region, indices in points.items():
        at = face_model.landmark_vertices[indices]
        value = maps.region_roughness(vertices[at], normals[at], landmarks)
        assert torch.allclose(value, torch.full((2,), maps.ROUGHNESS[region]), atol=0.03), \
            (region, value)


@pytest.mark.slow
def test_bake_maps_writes_the_atlas_layout(face_model):
    """Maps at 512 x 256 from a synthetic albedo with dark pores seen in the photo."""
    generator = torch.Generator().manual_seed(0)
    albedo = torch.full((3, 128, 256), 0.6)
    pores = torch.rand(128, 256, generator=generator) < 0.02
    albedo[:, pores] = 0.3
    seen = torch.zeros(128, 256, dtype=torch.bool)
    seen[:, :128] = True  # the face tile was seen, the back of the head was not
    surface = maps.bake_maps(face_model, face_model.neutral, albedo, seen, width=512)
    assert surface.normal.shape == (256, 512, 3) and surface.normal.dtype == np.uint8
    assert surface.roughness.shape == surface.ao.shape == (256, 512)
    decoded = surface.normal.astype(np.float32) / 255 * 2 - 1
    assert np.all(np.abs(np.linalg.norm(decoded, axis=-1) - 1) < 0.03)
    back = surface.normal[:, 300:]  # unseen: flat
    assert np.all(np.abs(back.astype(int) - [128, 128, 255]) <= 1)
    front_tilt = np.abs(decoded[60:200, 20:110, :2]).max()
    assert front_tilt > 0.2  # the pores give relief where the photo saw them
    assert surface.ao.min() < 128 < np.median(surface.ao)
    files = maps.map_files(surface)
    assert {role: name for role, (name, _) in files.items()} == maps.MAP_FILES
