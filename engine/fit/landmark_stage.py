"""Stage 1: pose, focal length, identity and expression from the 68 landmarks.

A closed-form start (an affine camera fitted to the mean face's landmarks, turned into a
rotation, distance and position), then Adam on the perspective reprojection error with
Gaussian priors on the codes and the sliding jaw contour.
"""

from collections.abc import Callable, Collection
from typing import Any

import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.facemodel.ict import SIDEWAYS_EXPRESSIONS
from engine.fit.contour import JawContour
from engine.fit.losses import (
    gaussian_prior,
    inter_ocular,
    landmark_error_px,
    landmark_loss,
    landmark_weights,
    laplace_prior,
    robust_landmark_loss,
)
from engine.fit.renderer import face_subset, project_landmarks
from engine.fit.state import FitState
from engine.landmarks.dense import dense_correspondence
from engine.render import matrix_to_axis_angle


@torch.no_grad()
def initial_pose(model: FaceModel, landmarks: Tensor, state: FitState) -> None:
    """Set rotation, offset and depth of every view from an affine camera fit (in place).

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
        state.offset[view] = (t[:2] / t[2]).float()
        state.log_depth[view] = t[2].log().float()


def fitted_landmarks(model: FaceModel, state: FitState, contour: JawContour | None = None
                     ) -> Tensor:
    """(N, 68, 2) pixels of the current fit's landmarks in the working images."""
    subset = face_subset(model)
    points = model(state.identity_batch(), state.expression, subset)
    return project_landmarks(model, points, state.camera(), contour or JawContour(model))


# objective(state) -> named loss terms, "total" among them
LandmarkObjective = Callable[[FitState], dict[str, Tensor]]


def landmark_objective(
    model: FaceModel,
    landmarks: Tensor,
    focal_start: Tensor,
    expression_mask: Tensor,
    landmark_sigma: float = 0.03,
    identity_sigma: float = 1.0,
    expression_sigma: float = 0.2,
    sideways_sigma: float | None = None,
    expression_laplace: float | None = None,
    focal_sigma: float = 0.3,
    dense: Tensor | None = None,
    dense_weight: float = 1.0,
    expression_prior: Tensor | None = None,
    jaw_weight: float | None = None,
    identity_gain: float = 1.0,
) -> LandmarkObjective:
    """The landmark stage's negative log posterior (per effective landmark) of a state.

    Its own function so that the photometric stage can keep the same landmark evidence and
    priors while the pixels refine the shape (with a weight of 0 on the pixels it would stay
    where this stage ends). See fit_landmarks for the arguments; focal_start: (N,) the
    log-focal prior's centre; expression_mask: (E,) which expressions are fitted.
    """
    contour = JawContour(model)
    subset = face_subset(model)
    weights = landmark_weights(landmarks.device)
    if jaw_weight is not None:
        weights[:17] = jaw_weight
    # the priors are per effective landmark, like the data term
    count = float(weights.sum()) * landmarks.shape[0]
    log_focal0 = focal_start.log()
    correspondence, dense_points = None, None
    if dense is not None:
        correspondence = dense_correspondence()
        dense_points = dense[:, correspondence.points]
    expression_mean = (torch.zeros_like(expression_mask) if expression_prior is None
                       else expression_prior * expression_mask)
    sideways = torch.zeros_like(expression_mask)
    for name in SIDEWAYS_EXPRESSIONS:
        sideways[model.expression_names.index(name)] = 1.0
    expression_sigmas = torch.full_like(expression_mask, expression_sigma)
    if sideways_sigma is not None:
        expression_sigmas[sideways > 0] = sideways_sigma
    # which expressions take the Laplace prior instead of the Gaussian
    sparse = torch.zeros_like(sideways) if expression_laplace is None else 1.0 - sideways

    def objective(state: FitState) -> dict[str, Tensor]:
        points = model(identity_gain * state.identity_batch(), state.expression, subset)
        camera = state.camera()
        projected = project_landmarks(model, points, camera, contour)
        data = landmark_loss(projected, landmarks, weights).mean() / landmark_sigma**2
        terms = {}
        if correspondence is not None and dense_points is not None:
            surface = camera.project(correspondence.surface(points))[..., :2]
            terms["dense"] = dense_weight * robust_landmark_loss(
                surface, dense_points, inter_ocular(landmarks)).mean() / landmark_sigma**2
        offset = state.expression - expression_mean
        prior = (gaussian_prior(identity_gain * state.identity, identity_sigma)
                 + gaussian_prior(offset * (1.0 - sparse), expression_sigmas)
                 + gaussian_prior(state.log_focal - log_focal0, focal_sigma)) / count
        if expression_laplace is not None:
            prior = prior + laplace_prior(offset * sparse, expression_laplace) / count
        total = data + prior + sum(terms.values())
        return {"total": total, "landmark": data, **terms, "prior": prior}

    return objective


def fit_landmarks(
    model: FaceModel,
    landmarks: Tensor,
    state: FitState,
    steps: int,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    hold: Collection[str] = (),
    **objective_options: Any,
) -> dict[str, float]:
    """Fit pose, focal, identity and expression to `landmarks` (N, 68, 2), in place.

    A maximum a posteriori fit (landmark_objective): landmark noise `landmark_sigma`
    (fraction of the inter-ocular distance), identity ~ N(0, identity_sigma), expression ~
    N(0, expression_sigma) held in [0, 1], log focal ~ N(start, focal_sigma). Adam, first on
    pose alone so the codes do not absorb a wrong pose, then on everything (L-BFGS was
    tried and stalls: jaw points switching vertex make the objective jump and end its
    line searches early). Returns the final loss terms.
    hold: unknowns kept as they are in `state` (e.g. "identity" when it is already known,
        as the shape benchmark's known-identity diagnostic has it).
    objective_options (landmark_objective's):
    dense: (N, 478, 2) MediaPipe mesh points in pixels, or None: fitted as points on the
        surface (engine.landmarks.dense) with a robust (Cauchy) loss, `dense_weight` times
        the 68-point term.
    expression_prior: (N, E) prior mean of the expression weights (e.g. the detector's
        blendshape scores), or None for 0.
    jaw_weight: weight of the 17 sliding jaw points (None: engine.fit.losses' default).
    sideways_sigma: the prior width of SIDEWAYS_EXPRESSIONS (engine.facemodel.ict), None:
        expression_sigma.
    expression_laplace: when given, the other expressions take a sparse Laplace prior of
        this scale (engine.fit.losses.laplace_prior) instead of the Gaussian.
    """
    initial_pose(model, landmarks, state)
    objective = landmark_objective(model, landmarks, state.log_focal.exp().detach(),
                                   state.expression_mask, **objective_options)

    rigid_steps = max(steps // 5, 10)
    phases = (
        ({"rotation": 0.02, "offset": 0.01, "log_depth": 0.02, "log_focal": 0.01},
         rigid_steps),
        ({"rotation": 0.01, "offset": 0.005, "log_depth": 0.01, "log_focal": 0.005,
          "identity": 0.05, "expression": 0.02}, steps - rigid_steps),
    )
    terms: dict[str, float] = {}
    done = 0
    for rates, count_steps in phases:
        with state.optimising(rates, hold) as groups:
            optimiser = torch.optim.Adam(groups)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, count_steps,
                                                                  eta_min=1e-4)
            for _ in range(count_steps):
                optimiser.zero_grad()
                losses = objective(state)
                losses["total"].backward()
                optimiser.step()
                schedule.step()
                state.constrain_()
                done += 1
                terms = {k: v.item() for k, v in losses.items()}
                if on_step is not None:
                    on_step(done, steps, terms)
    return terms


@torch.no_grad()
def reprojection_error_px(model: FaceModel, state: FitState, landmarks: Tensor) -> Tensor:
    """(N,) mean landmark distance in pixels (jaw on the silhouette)."""
    return landmark_error_px(fitted_landmarks(model, state), landmarks)
