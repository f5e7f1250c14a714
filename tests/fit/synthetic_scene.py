"""Ground-truth scenes rendered by the project's own renderer, for recovery tests."""

import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.facemodel import FaceModel
from engine.fit.crop import FaceCrop
from engine.fit.fitter import initial_state
from engine.fit.landmark_stage import fitted_landmarks
from engine.fit.renderer import FaceRenderer
from engine.fit.state import START_FOCAL_PER_SIDE, FitState
from engine.render import matrix_to_axis_angle
from engine.render.camera import FRONT_ROTATION

# the photo focal length the engine assumes before fitting, in units of the long side: one
# photo of a face says little about the focal length, so recovery is measured at the
# assumed value (a wrong one is absorbed into the shape as perspective)
FOCAL_PER_SIDE = START_FOCAL_PER_SIDE


@dataclass
class Scene:
    truth: FitState
    image: np.ndarray  # (S, S, 3) uint8
    landmarks: torch.Tensor  # (1, 68, 2) pixels
    texture: torch.Tensor  # (1, 3, 64, 64)


def clone_state(state: FitState) -> FitState:
    """A copy of a fit's state that later fitting cannot change."""
    return type(state)(**{k: v.clone() for k, v in vars(state).items()})


def yawed_rotation(yaw_degrees: float) -> torch.Tensor:
    """(3,) axis-angle of a front-facing camera with the head turned by `yaw_degrees`."""
    a = math.radians(yaw_degrees)
    yaw = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    return matrix_to_axis_angle(torch.tensor(FRONT_ROTATION) @ yaw)


def make_scene(model: FaceModel, seed: int, expressions: dict[str, float], yaw: float,
               size: int = 512, identity_scale: float = 0.8) -> Scene:
    """A lit, textured render of a random identity with the given expression and yaw."""
    g = torch.Generator().manual_seed(seed)
    identity = torch.randn(model.num_identity, generator=g) * identity_scale
    return render_scene(model, identity, expressions, yaw, size)


def render_scene(model: FaceModel, identity: torch.Tensor, expressions: dict[str, float],
                 yaw: float, size: int = 512) -> Scene:
    """A lit, textured render of `identity` (K,) with the given expression and yaw."""
    truth = initial_state(model, [np.zeros((size, size, 3), np.uint8)], torch.device("cpu"))
    truth.identity = identity
    for name, weight in expressions.items():
        truth.expression[0, model.expression_names.index(name)] = weight
    truth.rotation[0] = yawed_rotation(yaw)
    truth.offset[0] = torch.tensor([1.0, -2.0]) / 60.0
    truth.log_depth[0] = math.log(60.0)
    truth.log_focal[0] = math.log(FOCAL_PER_SIDE * size)
    truth.sh[0, 1:4] = torch.tensor([0.4, -0.6, 0.5])[:, None]  # light from the upper left
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    texture = torch.stack([0.75 + 0.1 * torch.sin(6 * xx), 0.55 + 0.05 * torch.cos(5 * yy),
                           0.45 + 0.0 * xx])[None]
    renderer = FaceRenderer(model, [FaceCrop(0.0, 0.0, float(size), size)])
    with torch.no_grad():
        image = renderer.render(truth, texture,
                                background=torch.full((1, 3, size, size), 0.3)).images[0]
        landmarks = fitted_landmarks(model, truth)
    rgb = (image.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    return Scene(truth, rgb, landmarks, texture)


def aligned_error_mm(a: torch.Tensor, b: torch.Tensor, scale: bool) -> float:
    """Mean distance (mm) between vertex sets (V, 3) in cm after aligning b to a with a
    rotation and translation (and a uniform scale when `scale`: the NoW benchmark's
    convention, since one photo cannot tell a big face far away from a small one near)."""
    a, b = a.double(), b.double()
    ac, bc = a - a.mean(0), b - b.mean(0)
    u, s, vt = torch.linalg.svd(bc.T @ ac)
    d = torch.ones(3, dtype=torch.float64)
    d[2] = torch.sign(torch.det(u @ vt))
    rotation = u @ torch.diag(d) @ vt
    k = float((s * d).sum() / (bc**2).sum()) if scale else 1.0
    return float(10 * (k * bc @ rotation - ac).norm(dim=-1).mean())
