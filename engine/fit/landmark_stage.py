"""Stage 1: pose, focal length, identity and expression from the 68 landmarks.

A closed-form start (an affine camera fitted to the mean face's landmarks, turned into a
rotation, distance and position), then Adam on the perspective reprojection error with
Gaussian priors on the codes and the sliding jaw contour.
"""

from collections.abc import Callable

import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.facemodel.model import VertexSubset
from engine.fit.contour import JawContour
from engine.fit.state import FitState

FACE_VERTICES = 9409  # every landmark and jaw candidate lies in the front face region
# Per-landmark weights: the jaw outline is the least precise part of any detector.
_JAW_WEIGHT = 0.5


def landmark_weights(device: torch.device) -> Tensor:
    w = torch.ones(68, device=device)
    w[:17] = _JAW_WEIGHT
    return w


def inter_ocular(landmarks: Tensor) -> Tensor:
    """(N,) eye-centre distances of (N, 68, 2) landmarks."""
    return (landmarks[:, 36:42].mean(1) - landmarks[:, 42:48].mean(1)).norm(dim=-1)


@torch.no_grad()
def initial_pose(model: FaceModel, landmarks: Tensor, state: FitState) -> None:
    """Set rotation and translation of every view from an affine camera fit (in place).

    Solves [u v]^T ~ A X + b for the mean face's landmarks X by least squares, takes the
    nearest rotation to A's rows (their mean norm is the scale f / z), and places the
    face at depth z = f / scale.
    """
    points = model.neutral[model.landmark_vertices].double().cpu()  # (68, 3), tiny: CPU
    centred_pts = points - points.mean(0)
    for view in range(landmarks.shape[0]):
        lm = landmarks[view].double().cpu()
        design = torch.cat([centred_pts, torch.ones(68, 1, dtype=torch.float64)], 1)
        solution = torch.linalg.lstsq(design, lm).solution  # (4, 2)
        affine = solution[:3].T  # (2, 3)
        scale = affine.norm(dim=1).mean()
        rows = affine / affine.norm(dim=1, keepdim=True)
        r3 = torch.linalg.cross(rows[0], rows[1])
        u, _, vt = torch.linalg.svd(torch.stack([rows[0], rows[1], r3]))
        rotation = u @ vt
        if torch.det(rotation) < 0:
            rotation = u @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=u.dtype)) @ vt
        focal = state.log_focal[view].exp().double().cpu()
        depth = focal / scale
        centre_px = solution[3] - state.principal_point[view].double().cpu()
        # the landmark centroid sits at camera (centre_px * z / f, z); remove R * mean
        t = torch.cat([centre_px * depth / focal, depth[None]]) - rotation @ points.mean(0)
        state.rotation[view] = matrix_to_axis_angle(rotation).float()
        state.translation[view] = t.float()


def matrix_to_axis_angle(rotation: Tensor) -> Tensor:
    """(3, 3) rotation -> (3,) axis-angle (log map), robust near 0 and pi."""
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


def project_landmarks(model: FaceModel, state: FitState, contour: JawContour,
                      subset: VertexSubset) -> Tensor:
    """(N, 68, 2) pixels of the current fit's landmarks, jaw points on the silhouette.

    subset: the model restricted to the front face (vertex ids unchanged)."""
    n = state.expression.shape[0]
    points = model(state.identity_batch(n), state.expression, subset)
    camera = state.camera()
    ids = contour.select(points.detach(), camera, model.landmark_vertices)
    chosen = points.gather(1, ids[..., None].expand(-1, -1, 3))
    return camera.project(chosen)[..., :2]


def face_subset(model: FaceModel) -> VertexSubset:
    return model.subset(torch.arange(FACE_VERTICES, device=model.neutral.device))


def fit_landmarks(
    model: FaceModel,
    landmarks: Tensor,
    state: FitState,
    steps: int,
    expression_mask: Tensor,
    landmark_sigma: float = 0.03,
    identity_sigma: float = 1.0,
    expression_sigma: float = 0.2,
    focal_sigma: float = 0.3,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Fit pose, focal, identity and expression to `landmarks` (N, 68, 2), in place.

    A maximum a posteriori fit: landmark noise `landmark_sigma` (fraction of the
    inter-ocular distance), identity ~ N(0, identity_sigma), expression ~ N(0,
    expression_sigma) held in [0, 1], log focal ~ N(start, focal_sigma). Adam, first on
    pose alone so the codes do not absorb a wrong pose, then on everything (L-BFGS was
    tried and stalls: jaw points switching vertex make the objective jump and end its
    line searches early). The camera is optimised as rotation, log depth, image-plane
    offset / depth and log focal, which are of similar scale.
    expression_mask: (E,) 1 for expressions that may move, 0 for those held at 0.
    Returns the final loss terms.
    """
    device = landmarks.device
    contour = JawContour(model)
    subset = face_subset(model)
    weights = landmark_weights(device)
    initial_pose(model, landmarks, state)
    log_focal0 = state.log_focal.clone()
    offset = (state.translation[:, :2] / state.translation[:, 2:]).clone().requires_grad_(True)
    log_depth = state.translation[:, 2].log().clone().requires_grad_(True)
    free = expression_mask.bool()
    selector = torch.eye(free.numel(), device=device)[free]  # (E', E): free codes -> all
    expression = state.expression[:, free].clone().requires_grad_(True)
    identity = state.identity.clone().requires_grad_(True)
    rotation = state.rotation.clone().requires_grad_(True)
    log_focal = state.log_focal.clone().requires_grad_(True)
    scale = inter_ocular(landmarks)[:, None]
    count = 68 * landmarks.shape[0]

    def objective() -> dict[str, Tensor]:
        depth = log_depth.exp()[:, None]
        state.translation = torch.cat([offset * depth, depth], dim=1)
        state.rotation, state.log_focal, state.identity = rotation, log_focal, identity
        state.expression = expression @ selector
        projected = project_landmarks(model, state, contour, subset)
        residual = ((projected - landmarks) ** 2).sum(-1) / scale**2 * weights
        data = residual.sum() / landmark_sigma**2 / count
        prior = ((identity**2).sum() / identity_sigma**2
                 + (expression**2).sum() / expression_sigma**2
                 + ((log_focal - log_focal0) ** 2).sum() / focal_sigma**2) / count
        return {"total": data + prior, "landmark": data, "prior": prior}

    rigid_steps = max(steps // 5, 10)
    phases = (
        ([(rotation, 0.02), (offset, 0.01), (log_depth, 0.02), (log_focal, 0.01)], rigid_steps),
        ([(rotation, 0.01), (offset, 0.005), (log_depth, 0.01), (log_focal, 0.005),
          (identity, 0.05), (expression, 0.02)], steps - rigid_steps),
    )
    terms: dict[str, float] = {}
    done = 0
    for groups, count_steps in phases:
        optimiser = torch.optim.Adam([{"params": [t], "lr": lr} for t, lr in groups])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, count_steps,
                                                              eta_min=1e-4)
        for _ in range(count_steps):
            optimiser.zero_grad()
            losses = objective()
            losses["total"].backward()
            optimiser.step()
            schedule.step()
            with torch.no_grad():
                expression.clamp_(0.0, 1.0)
            done += 1
            terms = {k: v.item() for k, v in losses.items()}
            if on_step is not None:
                on_step(done, steps, terms)
    with torch.no_grad():
        depth = log_depth.exp()[:, None]
        state.translation = torch.cat([offset * depth, depth], dim=1).detach()
        state.rotation, state.log_focal = rotation.detach(), log_focal.detach()
        state.identity = identity.detach()
        state.expression = expression.detach() @ selector
    return terms


def reprojection_error_px(model: FaceModel, state: FitState, landmarks: Tensor) -> Tensor:
    """(N,) mean landmark distance in pixels (jaw on the silhouette), no gradient."""
    with torch.no_grad():
        projected = project_landmarks(model, state, JawContour(model), face_subset(model))
        return (projected - landmarks).norm(dim=-1).mean(-1)
