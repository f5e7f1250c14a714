"""Camera: Rodrigues, the OpenCV projection convention, the front camera, gradients."""

import math

import torch

from engine.render import PinholeCamera, axis_angle_to_matrix, front_camera


def test_axis_angle_known_rotations_and_orthonormality():
    quarter_z = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]], dtype=torch.float64))
    expected = torch.tensor(
        [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    torch.testing.assert_close(quarter_z[0], expected, atol=1e-12, rtol=0)
    aa = torch.randn(16, 3, dtype=torch.float64)
    rot = axis_angle_to_matrix(aa)
    eye = torch.eye(3, dtype=torch.float64).expand(16, 3, 3)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), eye, atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(16, dtype=torch.float64))
    # The axis is left fixed.
    torch.testing.assert_close((rot @ aa[..., None])[..., 0], aa)
    zero = axis_angle_to_matrix(torch.zeros(1, 3))
    torch.testing.assert_close(zero[0], torch.eye(3))


def test_axis_angle_gradients_including_zero():
    generic = torch.tensor([[0.3, -0.2, 0.5]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (generic,))
    at_zero = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (at_zero,))
    # d R / d aa at 0 is the skew generator: finite, and equal to the exact derivative.
    tiny = torch.full((1, 3), 1e-5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (tiny,))


def test_projection_follows_opencv_convention():
    camera = PinholeCamera(
        rotation=torch.eye(3)[None],
        translation=torch.tensor([[0.0, 0.0, 10.0]]),
        focal=torch.tensor([[100.0, 120.0]]),
        principal_point=torch.tensor([[31.5, 23.5]]),
    )
    points = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 10.0]]])
    uvz = camera.project(points)
    torch.testing.assert_close(uvz[0, 0], torch.tensor([31.5, 23.5, 10.0]))
    torch.testing.assert_close(uvz[0, 1], torch.tensor([31.5 + 10.0, 23.5 + 24.0, 10.0]))
    torch.testing.assert_close(uvz[0, 2], torch.tensor([31.5, 23.5, 20.0]))


def test_front_camera_shows_the_model_upright_and_unmirrored():
    camera = front_camera((200, 100), distance=50.0, focal=300.0, target=(0.0, 1.0, 2.0))
    points = torch.tensor([[[0.0, 1.0, 2.0], [0.0, 3.0, 2.0], [4.0, 1.0, 2.0], [0.0, 1.0, 5.0]]])
    u, v, z = camera.project(points)[0].unbind(-1)
    # The target is at the image centre, 50 cm away.
    torch.testing.assert_close(torch.stack([u[0], v[0], z[0]]), torch.tensor([49.5, 99.5, 50.0]))
    assert v[1] < v[0]  # model up (+Y) is image up (smaller v)
    assert u[2] > u[0]  # model +X (the subject's left) is on the image's right
    assert z[3] < z[0]  # the model's +Z (where the face looks) is towards the camera
    torch.testing.assert_close(torch.linalg.det(camera.rotation), torch.ones(1))


def test_projection_gradients_match_finite_differences():
    torch.manual_seed(0)
    points = torch.randn(1, 5, 3, dtype=torch.float64)

    def project(aa, translation, focal):
        camera = PinholeCamera(
            rotation=axis_angle_to_matrix(aa),
            translation=translation,
            focal=focal,
            principal_point=torch.tensor([[40.0, 30.0]], dtype=torch.float64),
        )
        return camera.project(points)

    aa = torch.tensor([[0.1, 0.2, -0.3]], dtype=torch.float64, requires_grad=True)
    translation = torch.tensor([[0.2, -0.1, 12.0]], dtype=torch.float64, requires_grad=True)
    focal = torch.tensor([[90.0, 95.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(project, (aa, translation, focal))
