"""Texture models for stage 2: what albedo the photometric loss may use.

GANFit decodes the UV albedo from a GAN's latent code. Until a generator checkpoint is
installed, the default is a coarse UV albedo (a low-resolution texture sampled
bilinearly): it carries skin tone and its broad variation, but cannot paint shading or
detail into the texture, so shape and light must explain those. Both implement the same
small interface, so a GAN plugs in without touching the fitter.
"""

from typing import Protocol

import torch
from torch import Tensor


class TextureModel(Protocol):
    """latent: a leaf tensor the optimiser moves; decode(latent) -> (1, 3, T, T) albedo."""

    latent: Tensor

    def decode(self) -> Tensor: ...

    def prior(self) -> Tensor: ...


class CoarseTexture:
    """A (1, 3, R, R) UV albedo around a base colour, with a smoothness prior.

    base_colour: (3,) linear RGB in [0, 1] the texture starts from.
    """

    name = "coarse-uv"

    def __init__(self, base_colour: Tensor, resolution: int = 32):
        self.base = base_colour.reshape(1, 3, 1, 1)
        self.latent = torch.zeros(1, 3, resolution, resolution, device=base_colour.device)

    def decode(self) -> Tensor:
        return (self.base + self.latent).clamp(0.0, 1.0)

    def prior(self) -> Tensor:
        """Squared neighbour differences plus a weak pull to the base colour."""
        t = self.latent
        dx = (t[..., :, 1:] - t[..., :, :-1]).pow(2).mean()
        dy = (t[..., 1:, :] - t[..., :-1, :]).pow(2).mean()
        return dx + dy + 0.1 * t.pow(2).mean()
