"""Texture models for the photometric stage: what albedo the pixel loss may use.

GANFit decodes the UV albedo from a generative model's latent code, fitted with
everything else. A texture model here is that decoder and the prior on its latent; the
latent itself is an unknown of the fit (`FitState.texture`), so the optimiser treats it
like any other code. The default without a learned model is a coarse UV albedo (a
low-resolution texture sampled bilinearly): it carries skin tone and its broad variation,
but cannot paint shading or detail into the texture, so shape and light must explain those.
"""

from typing import Protocol

import torch
from torch import Tensor


class TextureModel(Protocol):
    """initial_latent() -> the latent to start from; decode(latent) -> (1, 3, T, T) albedo
    in [0, 1] in the model's own UV layout; prior(latent) -> scalar penalty."""

    name: str

    def initial_latent(self) -> Tensor: ...

    def decode(self, latent: Tensor) -> Tensor: ...

    def prior(self, latent: Tensor) -> Tensor: ...


class CoarseTexture:
    """A (1, 3, R, R) UV albedo around a base colour, with a smoothness prior.

    base_colour: (3,) linear RGB in [0, 1] the texture starts from.
    """

    name = "coarse-uv"

    def __init__(self, base_colour: Tensor, resolution: int = 32):
        self.base = base_colour.reshape(1, 3, 1, 1)
        self.resolution = resolution

    def initial_latent(self) -> Tensor:
        return torch.zeros(1, 3, self.resolution, self.resolution, device=self.base.device)

    def decode(self, latent: Tensor) -> Tensor:
        return (self.base + latent).clamp(0.0, 1.0)

    def prior(self, latent: Tensor) -> Tensor:
        """Squared neighbour differences plus a weak pull to the base colour."""
        dx = (latent[..., :, 1:] - latent[..., :, :-1]).pow(2).mean()
        dy = (latent[..., 1:, :] - latent[..., :-1, :]).pow(2).mean()
        return dx + dy + 0.1 * latent.pow(2).mean()

