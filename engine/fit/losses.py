"""The fit's loss terms and their metrics, one definition each, used by both stages.

Landmark residuals are measured in units of the inter-ocular distance, so one weight
means the same for a small and a large face, in a crop or in the full photo.
"""

import torch
from torch import Tensor

# Per-landmark weights: the jaw outline is the least precise part of any detector.
JAW_WEIGHT = 0.5


def landmark_weights(device: torch.device | str) -> Tensor:
    """(68,) weight of each iBUG landmark."""
    w = torch.ones(68, device=device)
    w[:17] = JAW_WEIGHT
    return w


def inter_ocular(landmarks: Tensor) -> Tensor:
    """(N,) eye-centre distances of (N, 68, 2) landmarks."""
    return (landmarks[:, 36:42].mean(1) - landmarks[:, 42:48].mean(1)).norm(dim=-1)


def landmark_loss(projected: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """(N,) weighted mean squared landmark distance / inter-ocular distance^2 per view.

    projected, target: (N, L, 2) pixels; weights: (L,). The scale comes from the target.
    """
    squared = ((projected - target) ** 2).sum(-1) / inter_ocular(target)[:, None] ** 2
    return (squared * weights).sum(-1) / weights.sum()


def robust_landmark_loss(projected: Tensor, target: Tensor, scale: Tensor,
                         cutoff: float = 0.05) -> Tensor:
    """(N,) mean Cauchy loss of point distances / inter-ocular distance per view: squared
    distance for small residuals, growing only logarithmically past `cutoff` (a detector's
    gross errors on a few of many dense points then do not drag the fit).

    projected, target: (N, P, 2) pixels; scale: (N,) inter-ocular distances in pixels.
    """
    squared = ((projected - target) ** 2).sum(-1) / scale[:, None] ** 2
    return (cutoff**2 * torch.log1p(squared / cutoff**2)).mean(-1)


def landmark_error_px(projected: Tensor, target: Tensor) -> Tensor:
    """(N,) mean landmark distance in pixels: the metric result.json reports."""
    return (projected - target).norm(dim=-1).mean(-1)


def masked_l1(images: Tensor, photos: Tensor, mask: Tensor) -> Tensor:
    """(N,) mean absolute colour difference inside the mask.

    images, photos: (N, 3, H, W); mask: (N, 1, H, W) in [0, 1].
    """
    total = ((images - photos).abs() * mask).sum((1, 2, 3))
    return total / (3 * mask.sum((1, 2, 3))).clamp(min=1.0)


def robust_weights(images: Tensor, photos: Tensor, scale: float = 0.15) -> Tensor:
    """(N, 1, H, W) Cauchy weights of each pixel's mean colour residual, without gradient:
    pixels the face cannot explain (occluders, hair, clothes) stop pulling the fit.

    images, photos: (N, 3, H, W) in [0, 1]; scale: the residual weighted 1/2.
    """
    residual = (images - photos).detach().abs().mean(1, keepdim=True)
    return 1.0 / (1.0 + (residual / scale) ** 2)


def gaussian_prior(codes: Tensor, sigma: float | Tensor) -> Tensor:
    """Negative log-density (up to a constant, x2) of independent N(0, sigma^2) codes."""
    return ((codes / sigma) ** 2).sum()


def laplace_prior(codes: Tensor, scale: float) -> Tensor:
    """Negative log-density (up to a constant, x2) of independent Laplace(0, scale) codes:
    a sparse prior, whose constant pull sets small codes to exactly 0 while a large one
    costs far less than under a Gaussian of the same scale."""
    return 2.0 * codes.abs().sum() / scale
