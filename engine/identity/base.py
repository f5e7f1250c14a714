"""The interface every face-recognition network offers the fitter."""

from __future__ import annotations

from typing import Self

import torch
from torch import nn


class IdentityNetwork(nn.Module):
    """A frozen face-recognition network on aligned square chips.

    Attributes: `name` ("arcface", "dlib"), `input_size` (chip side in pixels: 112 or 150),
    `embedding_dim`. Chips are (B, 3, S, S) float RGB in [0, 1]; each network applies its
    own input normalisation, so callers never see it.
    """

    name: str = ""
    input_size: int = 0
    embedding_dim: int = 0

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """chips (B, 3, S, S) -> (B, D) L2-normalised embeddings."""
        raise NotImplementedError

    def features(self, chips: torch.Tensor) -> list[torch.Tensor]:
        """chips (B, 3, S, S) -> inner feature maps [(B, C_j, H_j, W_j), ...] (content loss)."""
        raise NotImplementedError

    def embed_and_features(self, chips: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Both at once; networks override this to share one forward pass."""
        return self.embed(chips), self.features(chips)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.embed(chips)

    def check_chips(self, chips: torch.Tensor) -> None:
        """Raise ValueError unless chips is (B, 3, S, S) with S = input_size."""
        s = self.input_size
        if chips.ndim != 4 or tuple(chips.shape[1:]) != (3, s, s):
            got = tuple(chips.shape)
            raise ValueError(f"{self.name} expects chips (B, 3, {s}, {s}), got {got}")

    def freeze(self) -> Self:
        """Evaluation mode, no parameter gradients (gradients still flow to the input)."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self
