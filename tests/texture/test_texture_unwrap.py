"""Texture unwrapping: a render with a known albedo and light unwraps back to that albedo,
the mask marks what was seen, and symmetry fills the hidden side of a profile view."""

import math

import pytest
import torch

from engine.render import (
    PinholeCamera,
    axis_angle_to_matrix,
    interpolate,
    rasterize,
    render_textured,
    uniform_sh,
    uv_screen_vertices,
)
from engine.render.camera import FRONT_ROTATION
from engine.texture.unwrap import push_pull_fill, unwrap_texture

TEXTURE = 128
PHOTO = 256


@pytest.fixture(scope="module")
def scene(face_model):
    """Face-region mesh, a left/right-symmetric smooth albedo over it, the texels' model
    x coordinate (which side of the face) and the mirror map."""
    region = face_model.region_triangles("face")
    triangles, uvs = face_model.triangles[region], face_model.triangle_uvs[region]
    screen, uv_triangles = uv_screen_vertices(uvs, (TEXTURE, TEXTURE))
    fragments = rasterize(screen, uv_triangles, (TEXTURE, TEXTURE))
    corners = face_model.neutral[triangles].reshape(-1, 3)  # per UV corner
    position = interpolate(corners, fragments, uv_triangles)[0]  # (T, T, 3)
    x, y, z = position.unbind(-1)
    albedo = torch.stack(
        [
            0.55 + 0.25 * torch.sin(0.6 * x.abs() + 0.3 * y),
            0.5 + 0.2 * torch.cos(0.4 * y - 0.2 * z),
            0.45 + 0.2 * torch.sin(0.5 * x.abs() - 0.4 * y + 0.1 * z),
        ]
    )
    covered = fragments.mask[0]
    albedo = torch.where(covered, albedo, torch.full_like(albedo, 0.5))
    return {
        "triangles": triangles,
        "uvs": uvs,
        "albedo": albedo,
        "covered": covered,
        "side": x,
        "vertices": face_model.neutral[None],
        "mirror": face_model.mirror_vertices(),
    }


def photograph(scene, yaw: float, light: torch.Tensor):
    """Render the scene's albedo from a camera turned by `yaw` about the model's Y axis."""
    pivot = torch.tensor([0.0, 0.0, 5.0])
    rotation = torch.tensor(FRONT_ROTATION)[None] @ axis_angle_to_matrix(
        torch.tensor([[0.0, yaw, 0.0]])
    )
    camera = PinholeCamera(
        rotation,
        torch.tensor([[0.0, -1.0, 55.0]]),
        torch.full((1, 2), 2.2 * PHOTO),
        torch.full((1, 2), (PHOTO - 1) / 2.0),
    )
    vertices_cam = camera.transform(scene["vertices"] - pivot)
    with torch.no_grad():
        photo = render_textured(
            vertices_cam,
            camera,
            scene["triangles"],
            scene["uvs"],
            scene["albedo"][None],
            light,
            (PHOTO, PHOTO),
            antialiased=False,
        ).image
    return photo.permute(0, 3, 1, 2), vertices_cam, camera


def key_light():
    sh = uniform_sh(1, 0.7)
    sh[:, 1], sh[:, 2], sh[:, 3] = -0.3, -0.6, -0.3
    return sh


def test_frontal_render_unwraps_to_the_albedo_it_was_rendered_with(scene, one_thread):
    light = key_light()
    photo, vertices_cam, camera = photograph(scene, 0.0, light)
    albedo, mask = unwrap_texture(
        photo, vertices_cam, camera, scene["triangles"], scene["uvs"], TEXTURE, light
    )
    seen = mask[0] > 0
    assert seen.sum() > 0.45 * scene["covered"].sum()  # the sides are too oblique
    assert not (seen & ~scene["covered"]).any()  # the mask marks only mesh texels
    error = (albedo - scene["albedo"]).abs()[:, seen]
    assert error.mean() < 0.01
    # Without dividing by the light the result is the shaded photo colour: clearly worse,
    # which shows the SH division is doing its job.
    unlit, _ = unwrap_texture(
        photo, vertices_cam, camera, scene["triangles"], scene["uvs"], TEXTURE, None
    )
    assert (unlit - scene["albedo"]).abs()[:, seen].mean() > 3 * error.mean()


def test_symmetry_fills_the_hidden_side_of_a_profile(scene, one_thread):
    light = uniform_sh(1, 0.9)
    # Turned so the camera sees the subject's left side (+X) and not the right.
    photo, vertices_cam, camera = photograph(scene, math.radians(-75.0), light)
    args = (photo, vertices_cam, camera, scene["triangles"], scene["uvs"], TEXTURE, light)
    albedo, mask = unwrap_texture(*args, mirror_vertices=scene["mirror"])
    seen = mask[0] > 0
    covered, side = scene["covered"], scene["side"]
    left, right = covered & (side > 1.0), covered & (side < -1.0)
    assert seen[left].float().mean() > 0.7
    assert seen[right].float().mean() < 0.05
    hidden = right & ~seen
    error = (albedo - scene["albedo"]).abs()[:, hidden].mean()
    assert error < 0.015
    # Push-pull alone (no symmetry) is far worse on the hidden side.
    smooth, _ = unwrap_texture(*args)
    assert (smooth - scene["albedo"]).abs()[:, hidden].mean() > 5 * error


def test_push_pull_keeps_known_pixels_and_fills_smoothly():
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    image = torch.stack([x, y])
    known = (x < 0.4) | (y < 0.3)
    filled = push_pull_fill(torch.where(known, image, torch.zeros_like(image)), known)
    torch.testing.assert_close(filled[:, known], image[:, known])
    assert filled[:, ~known].min() > 0.0 and filled[:, ~known].max() < 1.0
