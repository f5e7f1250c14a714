"""The linear texture model: a mean atlas plus K principal components, learned with missing
data, and its robust fit to a partly trusted albedo.

Learning (`build_linear_model`): EM-PCA over the de-lit atlases where each texel counts by
its confidence: untrusted texels are replaced by the current low-rank reconstruction and the
mean and components re-estimated, until they settle. Texels that almost no photo trusts
(scalp, back of the head, under the collar) get the mean and components of the nearest
trusted texels by push-pull, so the model always completes a whole head.

Fitting (`LinearTextureModel.fit`): a MAP estimate of the latent (components are scaled
by their standard deviation, so latent ~ N(0, I)) by weighted least squares, re-weighted
(Cauchy) so that what the model cannot explain (an occluder, a collar the colour test let
through) stops pulling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.texture.unwrap import push_pull_fill

MIN_SUPPORT = 0.1  # a texel needs this fraction of the photos' confidence to be learned
_EM_ITERATIONS = 25
CAUCHY_SCALE = 0.08  # residuals (albedo units) beyond this are down-weighted
_FIT_ITERATIONS = 4
# The texels of one photo are far from independent observations: the data term counts as
# this many, so the prior keeps its say on what the photo does not show.
EFFECTIVE_OBSERVATIONS = 400.0
NOISE = 0.05


@dataclass
class LinearTextureModel:
    """mean: (3, T, 2T) de-lit sRGB atlas; components: (K, 3, T, 2T), each scaled by its
    standard deviation; covered: (T, 2T) bool, texels in the skin's UV layout;
    info: provenance (source photos, licence, build settings) kept with the asset."""

    mean: Tensor
    components: Tensor
    covered: Tensor
    info: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.components.shape[0]

    @property
    def atlas_size(self) -> tuple[int, int]:
        height, width = self.mean.shape[-2:]
        return height, width

    def to(self, device: torch.device | str) -> LinearTextureModel:
        return LinearTextureModel(self.mean.to(device), self.components.to(device),
                                  self.covered.to(device), self.info)

    def decode(self, latent: Tensor) -> Tensor:
        """latent (K,) -> albedo atlas (3, T, 2T); (B, K) -> (B, 3, T, 2T). Not clamped."""
        flat = latent.reshape(-1, self.size) @ self.components.reshape(self.size, -1)
        out = self.mean + flat.view(-1, *self.mean.shape)
        return out if latent.dim() > 1 else out[0]

    def fit(self, albedo: Tensor, confidence: Tensor, noise: float = NOISE,
            iterations: int = _FIT_ITERATIONS) -> tuple[Tensor, Tensor]:
        """The robust MAP latent (K,) for an albedo (3, H, W) with confidence (H, W), at
        any atlas size (area-resampled to the model's); also returns the fit's residual
        (T, 2T), the colour distance left at each texel (0 where nothing was observed)."""
        target, weight = resample_observation(albedo, confidence, self.atlas_size)
        keep = self.covered & (weight > 0)
        latent = self.mean.new_zeros(self.size)
        residual_map = torch.zeros_like(weight)
        if not bool(keep.any()):
            return latent, residual_map
        basis = self.components[:, :, keep].reshape(self.size, -1)  # (K, 3M)
        offset = (target - self.mean)[:, keep].reshape(-1)  # (3M,)
        base = weight[keep]
        trust = base
        for _ in range(iterations):
            w = trust.repeat(3)
            scale = EFFECTIVE_OBSERVATIONS / (noise**2 * w.sum().clamp(min=1e-6))
            normal = (basis * w) @ basis.T * scale + torch.eye(self.size, device=basis.device)
            latent = torch.linalg.solve(normal.double(),
                                        ((basis * w) @ offset * scale).double()).to(basis)
            residual = (basis.T @ latent - offset).view(3, -1).norm(dim=0)
            trust = base / (1.0 + (residual / CAUCHY_SCALE) ** 2)
        residual_map[keep] = residual
        return latent, residual_map

    def save(self, path: Path) -> None:
        """float16 arrays + JSON provenance in one .npz."""
        np.savez_compressed(
            path, mean=self.mean.cpu().numpy().astype(np.float16),
            components=self.components.cpu().numpy().astype(np.float16),
            covered=self.covered.cpu().numpy(), info=np.array(json.dumps(self.info)))

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu") -> LinearTextureModel:
        with np.load(path) as data:
            return cls(torch.from_numpy(data["mean"].astype(np.float32)).to(device),
                       torch.from_numpy(data["components"].astype(np.float32)).to(device),
                       torch.from_numpy(data["covered"]).to(device),
                       json.loads(str(data["info"])))


def resample_observation(albedo: Tensor, confidence: Tensor,
                         size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Confidence-weighted area resampling of (3, H, W), (H, W) to `size`."""
    if tuple(albedo.shape[-2:]) == tuple(size):
        return albedo, confidence
    weighted = F.adaptive_avg_pool2d((albedo * confidence)[None], size)[0]
    weight = F.adaptive_avg_pool2d(confidence[None, None], size)[0, 0]
    return weighted / weight.clamp(min=1e-6), weight


def _em_pca(data: Tensor, weight: Tensor, components: int,
            iterations: int) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted EM-PCA. data, weight: (N, D). Returns mean (D,), components (K, D) scaled by
    their standard deviation, and the explained variance ratio of each."""
    n = data.shape[0]
    mean = (weight * data).sum(0) / weight.sum(0).clamp(min=1e-6)
    low_rank = torch.zeros_like(data)
    for _ in range(iterations):
        filled = weight * data + (1 - weight) * (mean + low_rank)
        mean = filled.mean(0)
        centred = filled - mean
        # N is small: the eigenvectors of the N x N Gram matrix give the top components
        values, vectors = torch.linalg.eigh(centred @ centred.T)
        values, vectors = values.flip(0)[:components].clamp(min=0), vectors.flip(1)[:, :components]
        directions = (vectors.T @ centred) / values.sqrt().clamp(min=1e-9)[:, None]  # (K, D)
        low_rank = (centred @ directions.T) @ directions
    total = (centred**2).sum()
    std = (values / max(n - 1, 1)).sqrt()
    return mean, directions * std[:, None], values / total.clamp(min=1e-12)


def build_linear_model(albedo: Tensor, confidence: Tensor, covered: Tensor, components: int,
                       info: dict, iterations: int = _EM_ITERATIONS) -> LinearTextureModel:
    """albedo: (N, 3, T, 2T); confidence: (N, T, 2T); covered: (T, 2T) bool."""
    n = albedo.shape[0]
    components = min(components, n - 1)
    support = confidence.sum(0) / n
    learned = covered & (support >= MIN_SUPPORT)
    data = albedo[:, :, learned].reshape(n, -1)
    weight = confidence[:, learned].repeat(1, 3)
    mean, basis, explained = _em_pca(data, weight, components, iterations)
    size = (3, *covered.shape)

    def as_image(flat: Tensor) -> Tensor:
        image = flat.new_zeros(size)
        image[:, learned] = flat.view(3, -1)
        return push_pull_fill(image, learned) * covered

    mean_image = as_image(mean)
    component_images = torch.stack([as_image(c) for c in basis])
    info = {**info, "components": components, "photos": n,
            "explained_variance": [round(float(e), 5) for e in explained],
            "learned_texels": int(learned.sum()), "covered_texels": int(covered.sum())}
    return LinearTextureModel(mean_image, component_images, covered, info)
