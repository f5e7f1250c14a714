"""Bilinear texture lookup in OBJ UV convention (nvdiffrast's `texture`, no mipmaps)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample a texture at UV coordinates.

    texture: (B, C, Ht, Wt), row 0 at the top (as the image file stores it).
    uv: (B, H, W, 2) OBJ convention: origin at the bottom-left, v up, [0, 1] over the image;
        texel (i, j) has its centre at ((j + 0.5) / Wt, 1 - (i + 0.5) / Ht). Outside [0, 1]
        the border texels repeat.
    Returns (B, H, W, C); differentiable w.r.t. texture and uv.
    """
    # grid_sample's grid is x right, y down in [-1, 1] over the outer texel edges.
    grid = torch.stack([uv[..., 0] * 2.0 - 1.0, 1.0 - uv[..., 1] * 2.0], dim=-1)
    sampled = F.grid_sample(
        texture, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled.permute(0, 2, 3, 1)
