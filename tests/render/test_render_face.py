"""The renderer on the face model: landmark vertices land where the pinhole projection
says, culling, end-to-end camera gradients, and a small analysis-by-synthesis fit."""

import pytest
import torch

from engine.render import (
    PinholeCamera,
    axis_angle_to_matrix,
    front_camera,
    interpolate,
    rasterize,
    render_textured,
    signed_double_area,
    triangle_neighbours,
    uniform_sh,
)
from engine.render.camera import FRONT_ROTATION


def smooth_texture(size: int = 64) -> torch.Tensor:
    """(1, 3, size, size) smooth colour waves over UV: interior detail for photometric fits."""
    g = torch.linspace(0.0, 1.0, size)
    v, u = torch.meshgrid(g, g, indexing="ij")
    return torch.stack(
        [0.6 + 0.3 * torch.sin(18.85 * u), 0.6 + 0.3 * torch.sin(18.85 * v), 0.5 + 0.0 * u]
    )[None]


def key_light() -> torch.Tensor:
    """(1, 9, 3) ambient plus a light from the camera's upper left (camera space)."""
    sh = uniform_sh(1, 0.6)
    sh[:, 1], sh[:, 2], sh[:, 3] = -0.4, -0.7, -0.5
    return sh


def test_landmark_vertices_render_where_the_camera_projects_them(face_model):
    size = 256
    camera = front_camera((size, size), distance=60.0, focal=2.4 * size, target=(0.0, -1.0, 5.0))
    triangles = face_model.triangles[face_model.region_triangles("face")]
    points = camera.transform(face_model.neutral[None])
    fragments = rasterize(camera.project_camera_space(points), triangles, (size, size))
    position = interpolate(points, fragments, triangles)[0]  # (H, W, 3) camera space
    landmarks = points[0, face_model.landmark_vertices]
    uvz = camera.project_camera_space(landmarks[None])[0]
    x0, y0 = uvz[:, 0].floor().long(), uvz[:, 1].floor().long()
    fx, fy = (uvz[:, 0] - x0)[:, None], (uvz[:, 1] - y0)[:, None]
    corners = [fragments.mask[0, y0 + dy, x0 + dx] for dy in (0, 1) for dx in (0, 1)]
    visible = torch.stack(corners).all(0)
    # Jaw ends sit on the silhouette and inner-lip points on the mouth opening; the rest is
    # surface seen from the front (the nose, 27..35, always).
    assert visible.sum() >= 50 and visible[27:36].all()
    # The rendered surface bilinearly sampled at the landmark's projection...
    q = (
        position[y0, x0] * (1 - fx) * (1 - fy)
        + position[y0, x0 + 1] * fx * (1 - fy)
        + position[y0 + 1, x0] * (1 - fx) * fy
        + position[y0 + 1, x0 + 1] * fx * fy
    )[visible]
    # ...projects back onto it (sub-pixel) and is the landmark vertex itself (not a point
    # of some other part of the face, as a flipped or shifted image would give).
    reprojected = camera.project_camera_space(q[None])[0]
    error_px = (reprojected[:, :2] - uvz[visible, :2]).norm(dim=-1)
    assert error_px.max() < 0.5
    # (Jaw-line points 0..16 lie where the surface turns away, so a pixel spans cm of depth.)
    inner = visible.nonzero().squeeze(1) >= 17
    assert (q - landmarks[visible])[inner].norm(dim=-1).max() < 0.3  # cm


def test_backface_culling_keeps_the_front_of_the_face(face_model):
    size = 96
    camera = front_camera((size, size), distance=60.0, focal=2.4 * size, target=(0.0, -1.0, 5.0))
    triangles = face_model.triangles[face_model.region_triangles("face")]
    screen = camera.project(face_model.neutral[None])
    plain = rasterize(screen, triangles, (size, size))
    culled = rasterize(screen, triangles, (size, size), cull_backfaces=True)
    # Seen from the front almost every visible triangle faces the camera...
    agree = (plain.triangle_id == culled.triangle_id).float().mean()
    assert agree > 0.99
    # ...and seen from behind, culling removes the (inside of the) face.
    back = PinholeCamera(
        torch.eye(3)[None] * torch.tensor([-1.0, -1.0, 1.0]),
        torch.tensor([[0.0, 1.0, 60.0]]),
        camera.focal,
        camera.principal_point,
    )
    behind = back.project(face_model.neutral[None])
    seen = rasterize(behind, triangles, (size, size))
    kept = rasterize(behind, triangles, (size, size), cull_backfaces=True)
    facing = signed_double_area(behind[0][triangles]) < 0  # (F,) front-facing from behind
    assert facing[seen.triangle_id[seen.mask]].float().mean() < 0.2  # mostly the inside
    assert facing[kept.triangle_id[kept.mask]].all()
    assert kept.mask.sum() < 0.3 * seen.mask.sum()


def test_render_gradients_wrt_camera_lighting_and_texture(bumpy_grid):
    vertices, triangles = bumpy_grid
    uvs = (vertices[:, :2][triangles] + 1.0) / 2.0
    texture = torch.rand(1, 3, 6, 6, dtype=torch.float64)
    size = (14, 16)

    def render(aa, translation, focal, sh, texture):
        camera = PinholeCamera(
            axis_angle_to_matrix(aa),
            translation,
            focal,
            torch.tensor([[7.6, 6.4]], dtype=torch.float64),
        )
        out = render_textured(
            camera.transform(vertices[None]), camera, triangles, uvs, texture, sh, size
        )
        return out.image

    aa = torch.tensor([[3.05, 0.1, 0.05]], dtype=torch.float64, requires_grad=True)
    translation = torch.tensor([[0.05, -0.1, 6.0]], dtype=torch.float64, requires_grad=True)
    focal = torch.tensor([[36.0, 34.0]], dtype=torch.float64, requires_grad=True)
    sh = (torch.randn(1, 9, 3, dtype=torch.float64) * 0.3).requires_grad_(True)
    texture.requires_grad_(True)
    image = render(aa, translation, focal, sh, texture)
    assert (image.abs().sum(-1) > 0).float().mean() > 0.5  # the mesh fills most of the image
    # fast_mode: random projections of the Jacobian (the full one costs ~700 passes).
    assert torch.autograd.gradcheck(
        render, (aa, translation, focal, sh, texture), fast_mode=True, atol=1e-5
    )


@pytest.mark.slow
def test_fit_recovers_pose_and_identity_from_a_shaded_render(face_model, one_thread):
    torch.manual_seed(0)
    size = 128
    region = face_model.region_triangles("face")
    triangles, uvs = face_model.triangles[region], face_model.triangle_uvs[region]
    neighbours = triangle_neighbours(triangles)
    pivot = face_model.neutral[face_model.region_vertices("face")].mean(0)
    front = torch.tensor(FRONT_ROTATION)[None]
    focal = torch.full((1, 2), 1.8 * size)
    principal = torch.full((1, 2), (size - 1) / 2.0)
    texture, light = smooth_texture(), key_light()
    modes = torch.tensor([1, 2, 3])  # mode 0 is mostly overall size, i.e. ambiguous with depth

    def render(identity, aa, translation):
        coefficients = torch.zeros(1, face_model.num_identity).index_copy(1, modes, identity)
        vertices = face_model(coefficients, torch.zeros(1, face_model.num_expressions))
        camera = PinholeCamera(front @ axis_angle_to_matrix(aa), translation, focal, principal)
        vertices_cam = camera.transform(vertices - pivot)
        return render_textured(
            vertices_cam,
            camera,
            triangles,
            uvs,
            texture,
            light,
            (size, size),
            neighbours=neighbours,
        ).image

    true_identity = torch.tensor([[1.2, -0.9, 0.7]])
    true_aa = torch.tensor([[0.08, -0.12, 0.04]])
    true_translation = torch.tensor([[0.0, -2.0, 45.0]])
    with torch.no_grad():
        target = render(true_identity, true_aa, true_translation)
    identity = torch.zeros(1, 3, requires_grad=True)
    aa = torch.zeros(1, 3, requires_grad=True)
    translation = (true_translation + torch.tensor([[1.0, -1.0, 1.0]])).requires_grad_(True)
    optimiser = torch.optim.Adam(
        [
            {"params": [identity], "lr": 0.15},
            {"params": [aa], "lr": 0.02},
            {"params": [translation], "lr": 0.1},
        ]
    )
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, 0.97)
    with torch.no_grad():
        initial_loss = (render(identity, aa, translation) - target).square().mean()
    for _ in range(60):
        optimiser.zero_grad()
        loss = (render(identity, aa, translation) - target).square().mean()
        loss.backward()
        optimiser.step()
        schedule.step()
    assert loss < initial_loss / 50
    assert (translation - true_translation).abs().max() < 0.3  # cm
    assert (aa - true_aa).abs().max() < 0.01  # rad
    assert (identity - true_identity).abs().max() < 0.35
