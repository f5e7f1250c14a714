"""The square crop around a face that stage 2 renders and compares, at render size."""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor


@dataclass(frozen=True)
class FaceCrop:
    """A square window of a working image, resampled to `size` pixels.

    x0, y0: top-left corner in working-image pixels (edges, not centres);
    side: window side in working pixels; size: rendered side in pixels.
    A working-image pixel coordinate u maps to (u + 0.5 - x0) * size / side - 0.5.
    """

    x0: float
    y0: float
    side: float
    size: int

    @property
    def scale(self) -> float:
        return self.size / self.side

    def points(self, uv: Tensor) -> Tensor:
        """(..., 2) working pixels -> crop pixels."""
        origin = uv.new_tensor([self.x0, self.y0])
        return (uv + 0.5 - origin) * self.scale - 0.5

    def intrinsics(self, focal: Tensor, principal: Tensor) -> tuple[Tensor, Tensor]:
        """Focal (...,) and principal point (..., 2) of the crop's camera."""
        return focal * self.scale, self.points(principal)

    def image(self, rgb: np.ndarray) -> Tensor:
        """(3, size, size) float in [0, 1] of the window (zero outside the photo)."""
        box = (self.x0, self.y0, self.x0 + self.side, self.y0 + self.side)
        crop = Image.fromarray(rgb).transform(
            (self.size, self.size), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(crop, dtype=np.float32) / 255.0).permute(2, 0, 1)


def face_crop(landmarks: np.ndarray, size: int, margin: float = 1.7) -> FaceCrop:
    """A square window centred on the 68 landmarks, `margin` times their extent."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    centre = (lo + hi) / 2 + 0.5
    side = float(max(hi - lo) * margin)
    return FaceCrop(float(centre[0] - side / 2), float(centre[1] - side / 2), side, size)
