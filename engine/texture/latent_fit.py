"""Fitting any texture model's latent to an observed albedo atlas, with one robust objective.

The final texture stage asks a texture model two things: the latent that best explains the
photo's trusted texels, and how far each texel stays from it (what the model cannot explain
loses its trust). The linear model answers in closed form (`LinearTextureModel.fit`:
weighted least squares, Cauchy re-weighted). A model without a closed form (the GAN) gets the
same MAP objective minimised by Adam: the confidence-weighted Cauchy loss of the colour
residual on the observation resampled to the model's atlas, counted as
EFFECTIVE_OBSERVATIONS observations of noise NOISE, plus the model's prior. Iteratively
re-weighted least squares with weights 1 / (1 + (r / c)^2) (what the linear fit does)
minimises exactly c^2 log(1 + (r / c)^2), so both minimise the same thing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from engine.fit.texture_model import TextureModel
from engine.texture.linear import (
    CAUCHY_SCALE,
    EFFECTIVE_OBSERVATIONS,
    NOISE,
    LinearTextureModel,
    resample_observation,
)
from engine.texture.unwrap import push_pull_fill

AnyTextureModel = LinearTextureModel | TextureModel
# Adam on the latent: each step moves a coordinate by about the learning rate, so STEPS x LR
# bounds how far the fit can go from the mean latent (a few standard deviations of a GAN's w).
_STEPS = 150
_LR = 0.03


def decoded_atlas(model: AnyTextureModel, latent: Tensor) -> Tensor:
    """The model's complete atlas (3, t, 2t) in [0, 1] for a latent: the linear model's holes
    outside its layout are filled by push-pull (its components are zero there)."""
    if isinstance(model, LinearTextureModel):
        return push_pull_fill(model.decode(latent).clamp(0, 1), model.covered)
    return model.decode(latent)[0].clamp(0, 1)


def atlas_size(model: AnyTextureModel) -> tuple[int, int]:
    """(t, 2t): the size of the atlas the model decodes."""
    if isinstance(model, LinearTextureModel):
        return model.atlas_size
    height, width = model.decode(model.initial_latent()).shape[-2:]
    return height, width


def robust_data_term(decoded: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """The Cauchy data term of the MAP objective, in the linear fit's units (the prior is
    counted as a sum of squared standardised latents next to it).

    decoded, target: (3, t, 2t); weight: (t, 2t), 0 where nothing was observed. Scalar.
    """
    residual = (decoded - target).square().sum(0)  # squared colour distance (t, 2t)
    cauchy = CAUCHY_SCALE**2 * torch.log1p(residual / CAUCHY_SCALE**2)
    scale = EFFECTIVE_OBSERVATIONS / (NOISE**2 * 3 * weight.sum().clamp(min=1e-6))
    return scale * (weight * cauchy).sum()


def fit_latent(model: TextureModel, albedo: Tensor, confidence: Tensor,
               steps: int = _STEPS, lr: float = _LR) -> tuple[Tensor, Tensor]:
    """The robust MAP latent of a model without a closed-form fit, by Adam from its initial
    latent; and the residual (t, 2t) left at each observed texel (0 where unobserved).

    albedo: (3, H, W) observed de-lit albedo; confidence: (H, W) in [0, 1]. The prior is the
    model's, times the latent's size: a mean of squared standardised coordinates (the GAN's)
    then counts like the linear model's sum.
    """
    target, weight = resample_observation(albedo, confidence, atlas_size(model))
    start = model.initial_latent()
    latent = start.clone().requires_grad_(True)
    if bool((weight > 0).any()):
        optimiser = torch.optim.Adam([latent], lr=lr)
        with torch.enable_grad():  # the texture stage runs under no_grad
            for _ in range(steps):
                loss = (robust_data_term(model.decode(latent)[0], target, weight)
                        + start.numel() * model.prior(latent))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
    latent = latent.detach()
    with torch.no_grad():
        residual = (model.decode(latent)[0] - target).norm(dim=0) * (weight > 0)
    return latent, residual


class LinearStageTexture:
    """The linear model as the photometric stage's texture (engine.fit.texture_model's
    protocol): latent (1, K) in units of each component's standard deviation, decoded to
    (1, 3, T, 2T) clamped to [0, 1], with the standard normal prior (mean of squares, like
    the GAN's)."""

    name = "texture-pca"

    def __init__(self, model: LinearTextureModel):
        self.model = model

    def initial_latent(self) -> Tensor:
        return self.model.mean.new_zeros(1, self.model.size)

    def decode(self, latent: Tensor) -> Tensor:
        return self.model.decode(latent).clamp(0, 1)

    def prior(self, latent: Tensor) -> Tensor:
        return latent.square().mean()


def stage_texture(model: AnyTextureModel) -> TextureModel:
    """Any texture model as the photometric stage fits it jointly with shape, pose and
    light (GANFit's stage 2)."""
    return LinearStageTexture(model) if isinstance(model, LinearTextureModel) else model


def fit_texture_model(model: AnyTextureModel, albedo: Tensor,
                      confidence: Tensor) -> tuple[Tensor, Tensor]:
    """(latent, residual (t, 2t)) of any texture model for an observed albedo (3, H, W) with
    confidence (H, W): the closed form where there is one, else `fit_latent`."""
    if isinstance(model, LinearTextureModel):
        return model.fit(albedo, confidence)
    return fit_latent(model, albedo, confidence)
