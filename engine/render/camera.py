"""Pinhole camera in the OpenCV convention of DESIGN.md, differentiable in all parameters.

A model-space point X (cm, Y up) maps to camera space as x = R X + t; the camera looks
along +z, image x to the right, image y down; pixel u = fx * x / z + cx,
v = fy * y / z + cy, with pixel centres at integer coordinates (a W-pixel-wide image spans
u in [-0.5, W - 0.5]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Below this squared angle the Rodrigues coefficients use their Taylor series: the exact
# formulas divide by theta and lose precision (and give NaN gradients) at theta = 0.
_SMALL_ANGLE_SQ = 1e-8
# |z| below this is treated as this value in the perspective division (the rasteriser
# drops such points anyway; this only keeps u, v and their gradients finite).
_MIN_ABS_DEPTH = 1e-8


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from axis-angle vectors (Rodrigues' formula).

    axis_angle: (B, 3), direction = axis, norm = angle in radians.
    Returns (B, 3, 3). Differentiable everywhere, including at the zero rotation.
    """
    theta_sq = (axis_angle * axis_angle).sum(-1, keepdim=True)  # (B, 1)
    small = theta_sq < _SMALL_ANGLE_SQ
    # Evaluate the exact branch on a safe angle so its (unused) gradient stays finite.
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = safe_sq.sqrt()
    sin_over = torch.where(small, 1.0 - theta_sq / 6.0, theta.sin() / theta)
    cos_over = torch.where(small, 0.5 - theta_sq / 24.0, (1.0 - theta.cos()) / safe_sq)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(skew)
    return eye + sin_over[..., None] * skew + cos_over[..., None] * (skew @ skew)


def matrix_to_axis_angle(rotation: torch.Tensor) -> torch.Tensor:
    """(3, 3) rotation -> (3,) axis-angle (the log map), robust near 0 and pi."""
    cos = ((rotation.trace() - 1) / 2).clamp(-1, 1)
    angle = torch.arccos(cos)
    axis = torch.stack([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0],
                        rotation[1, 0] - rotation[0, 1]])
    if angle < 1e-6:
        return axis / 2
    if angle > torch.pi - 1e-3:  # near pi: the axis is the dominant column of R + I
        sym = (rotation + torch.eye(3, dtype=rotation.dtype)) / 2
        column = sym[:, sym.diagonal().argmax()]
        return column / column.norm() * angle
    return axis / (2 * torch.sin(angle)) * angle


@dataclass
class PinholeCamera:
    """A batch of pinhole cameras (OpenCV convention, see the module docstring).

    rotation: (B, 3, 3) model-to-camera rotation R.
    translation: (B, 3) t in cm.
    focal: (B, 2) [fx, fy] in pixels.
    principal_point: (B, 2) [cx, cy] in pixels.
    """

    rotation: torch.Tensor
    translation: torch.Tensor
    focal: torch.Tensor
    principal_point: torch.Tensor

    def transform(self, points: torch.Tensor) -> torch.Tensor:
        """Model space (B, V, 3) -> camera space (B, V, 3): x = R X + t."""
        return points @ self.rotation.transpose(1, 2) + self.translation[:, None, :]

    def project_camera_space(self, points_cam: torch.Tensor) -> torch.Tensor:
        """Camera space (B, V, 3) -> (B, V, 3) holding (u, v, z): pixels plus depth."""
        z = points_cam[..., 2:3]
        z_safe = torch.where(z.abs() < _MIN_ABS_DEPTH, torch.full_like(z, _MIN_ABS_DEPTH), z)
        uv = points_cam[..., :2] / z_safe * self.focal[:, None, :] + self.principal_point[:, None]
        return torch.cat([uv, z], dim=-1)

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """Model space (B, V, 3) -> (B, V, 3) holding (u, v, z): pixels plus camera depth."""
        return self.project_camera_space(self.transform(points))

    @property
    def batch_size(self) -> int:
        return self.rotation.shape[0]


# Looking at the model from the front: camera x = model X, camera y = -model Y (image y
# points down while the model's Y points up) and camera z = -model Z (the model faces +Z,
# towards the camera). That is diag(1, -1, -1), a 180 degree turn about the X axis.
FRONT_ROTATION = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))


def front_camera(
    image_size: tuple[int, int],
    distance: float,
    focal: float,
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
    batch_size: int = 1,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> PinholeCamera:
    """A camera on the model's +Z axis looking back at `target`, image upright.

    image_size: (H, W) in pixels; the principal point is the image centre.
    distance: cm from `target` (model space) to the camera centre along +Z.
    focal: fx = fy in pixels.
    """
    height, width = image_size
    rotation = torch.tensor(FRONT_ROTATION, dtype=dtype, device=device)
    centre = torch.tensor(target, dtype=dtype, device=device) + torch.tensor(
        [0.0, 0.0, distance], dtype=dtype, device=device
    )
    translation = -(rotation @ centre)
    principal = torch.tensor([(width - 1) / 2.0, (height - 1) / 2.0], dtype=dtype, device=device)
    return PinholeCamera(
        rotation=rotation.expand(batch_size, 3, 3).clone(),
        translation=translation.expand(batch_size, 3).clone(),
        focal=torch.full((batch_size, 2), float(focal), dtype=dtype, device=device),
        principal_point=principal.expand(batch_size, 2).clone(),
    )
