"""Laplacian-pyramid blending: join two images along a soft mask without a visible seam.

Each band of detail is blended with the mask blurred to that band's scale, so fine detail
switches sharply and the broad colour changes gently (Burt and Adelson, 1983).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _down(image: Tensor) -> Tensor:
    return F.avg_pool2d(image, 2, ceil_mode=True)


def _up(image: Tensor, size: torch.Size) -> Tensor:
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def laplacian_blend(first: Tensor, second: Tensor, mask: Tensor, levels: int = 5) -> Tensor:
    """mask * first + (1 - mask) * second, band by band.

    first, second: (C, H, W); mask: (H, W) in [0, 1] (1 keeps `first`). Returns (C, H, W).
    """
    a, b, m = first[None], second[None], mask[None, None].to(first.dtype)
    out_bands = []
    for _ in range(levels):
        if min(a.shape[-2:]) < 2:
            break
        a_low, b_low = _down(a), _down(b)
        band_a = a - _up(a_low, a.shape[-2:])
        band_b = b - _up(b_low, b.shape[-2:])
        out_bands.append(m * band_a + (1 - m) * band_b)
        a, b, m = a_low, b_low, _down(m)
    out = m * a + (1 - m) * b
    for band in reversed(out_bands):
        out = _up(out, band.shape[-2:]) + band
    return out[0]
