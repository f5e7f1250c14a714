"""Differentiable face alignment: a similarity transform from landmarks, then a warp.

The fitter computes the transform once from the PHOTO's landmarks and applies the same
transform to the photo and to the render, so both chips show the face in the same place
and the identity loss compares faces, not framings. Both steps are plain torch: gradients
reach the images through `warp_to_chip` (grid_sample), and the landmarks through
`alignment_transform` should a caller want that.

Pixel convention (DESIGN.md, OpenCV): pixel centres at integer coordinates; an image W
pixels wide spans u in [-0.5, W - 0.5]. A transform (B, 2, 3) maps image pixels to chip
pixels, like the matrix cv2.warpAffine takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The five alignment points taken from the 68 iBUG landmarks, as groups whose mean is used.
_EYE_R = tuple(range(36, 42))  # subject's right eye (image left)
_EYE_L = tuple(range(42, 48))


@dataclass(frozen=True)
class AlignmentTemplate:
    """Where five face points go in a square chip.

    name: what the template is for; size: chip side in pixels; points: five (x, y) chip
    pixel positions; groups: for each point, the iBUG-68 indices whose mean is mapped to it;
    dlib_chip: fit and frame the chip the way dlib's get_face_chip does (see
    `dlib_chip_transform`) instead of a plain image-to-template least-squares fit.
    """

    name: str
    size: int
    points: tuple[tuple[float, float], ...]
    groups: tuple[tuple[int, ...], ...]
    dlib_chip: bool = False

    def target(self, device: torch.device | None = None) -> torch.Tensor:
        """(5, 2) float32 chip-pixel positions."""
        return torch.tensor(self.points, dtype=torch.float32, device=device)

    def source_points(self, landmarks68: torch.Tensor) -> torch.Tensor:
        """landmarks68 (B, 68, 2) -> (B, 5, 2) the points this template aligns."""
        return torch.stack([landmarks68[:, list(g)].mean(dim=1) for g in self.groups], dim=1)


# insightface's ArcFace template for 112x112 crops (`arcface_dst` in
# python-package/insightface/utils/face_align.py): eye centres, nose tip, mouth corners,
# image-left first. Used with cv2.warpAffine, so the positions are pixel-centre coordinates.
ARCFACE_TEMPLATE = AlignmentTemplate(
    name="arcface",
    size=112,
    points=((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
            (41.5493, 92.3655), (70.7299, 92.2041)),
    groups=(_EYE_R, _EYE_L, (30,), (48,), (54,)),
)


def _padded(unit: tuple[tuple[float, float], ...], size: int, padding: float):
    """dlib's padding of a unit-square template: (padding + p) / (2 padding + 1) * size."""
    return tuple(tuple((padding + v) / (2 * padding + 1) * size for v in p) for p in unit)


# dlib's 150 px face chip with padding 0.25, as dlib.get_face_chip makes it for its face
# recognition network from the 5-point predictor. The unit-square template is dlib's
# (get_face_chip_details in dlib/image_transforms/interpolation.h); its points are the
# subject's left eye outer and inner corner, right eye outer and inner corner and the base
# of the nose, here taken from the corresponding iBUG-68 points 45, 42, 36, 39 and 33.
DLIB_TEMPLATE = AlignmentTemplate(
    name="dlib",
    size=150,
    points=_padded(
        ((0.8595674595992, 0.2134981538014), (0.6460604764104, 0.2289674387677),
         (0.1205750620789, 0.2137274526848), (0.3340850613712, 0.2290642403242),
         (0.4901123135679, 0.6277975316475)), 150, 0.25),
    groups=((45,), (42,), (36,), (39,), (33,)),
    dlib_chip=True,
)

TEMPLATES = {t.name: t for t in (ARCFACE_TEMPLATE, DLIB_TEMPLATE)}


def similarity_lstsq(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity (rotation, uniform scale, translation) taking src to dst.

    src, dst: (B, N, 2) -> (B, 2, 3). The closed form of Umeyama (1991) in 2D, written with
    complex numbers: dst_c ~ a * src_c with a = sum(conj(src_c) dst_c) / sum(|src_c|^2),
    which is differentiable everywhere the source points are not all equal.
    """
    src_mean = src.mean(dim=1, keepdim=True)
    dst_mean = dst.mean(dim=1, keepdim=True)
    p, q = (src - src_mean).unbind(-1)
    u, v = (dst - dst_mean).unbind(-1)
    denom = (p * p + q * q).sum(dim=1)
    a = (p * u + q * v).sum(dim=1) / denom
    b = (p * v - q * u).sum(dim=1) / denom
    rot = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], dim=1)  # (B,2,2)
    t = dst_mean[:, 0] - torch.einsum("bij,bj->bi", rot, src_mean[:, 0])
    return torch.cat([rot, t[:, :, None]], dim=2)


def dlib_chip_transform(points: torch.Tensor, template: torch.Tensor, size: int) -> torch.Tensor:
    """dlib's chip framing: points (B, N, 2) image pixels, template (N, 2) -> (B, 2, 3).

    dlib fits the similarity the other way round (template -> image), keeps its rotation
    and scale s, and extracts a rectangle of side size*s - 1 image pixels centred on the
    image of the template's centre (size/2, size/2), whose corner pixels become chip pixels
    0 and size-1 (chip_details and extract_image_chips in interpolation.h; centered_drect
    takes one off the side). Reproducing that matters: the chip scale differs from the
    plain fit by about 1%, which the network notices.
    """
    c2i = similarity_lstsq(template.expand(points.shape[0], -1, -1), points)
    lin, t = c2i[:, :, :2], c2i[:, :, 2]
    s = torch.linalg.det(lin).sqrt()  # (B,)
    half = torch.full((2,), size / 2, dtype=points.dtype, device=points.device)
    centre = lin @ half + t
    lin = lin * ((size * s - 1) / (size - 1) / s)[:, None, None]
    t = centre - lin @ torch.full_like(half, (size - 1) / 2)
    return _invert(torch.cat([lin, t[:, :, None]], dim=2))


def alignment_transform(landmarks68: torch.Tensor, template: AlignmentTemplate) -> torch.Tensor:
    """landmarks68 (B, 68, 2) image pixels -> (B, 2, 3) image-to-chip similarity."""
    src = template.source_points(landmarks68)
    dst = template.target(landmarks68.device).to(landmarks68.dtype)
    if template.dlib_chip:
        return dlib_chip_transform(src, dst, template.size)
    return similarity_lstsq(src, dst.expand_as(src))


def transform_points(transform: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply (B, 2, 3) to points (B, N, 2) -> (B, N, 2)."""
    return torch.einsum("bij,bnj->bni", transform[:, :, :2], points) + transform[:, None, :, 2]


def _invert(transform: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) affine -> its inverse (B, 2, 3)."""
    lin_inv = torch.linalg.inv(transform[:, :, :2])
    t = -torch.einsum("bij,bj->bi", lin_inv, transform[:, :, 2])
    return torch.cat([lin_inv, t[:, :, None]], dim=2)


def warp_to_chip(
    images: torch.Tensor, transform: torch.Tensor, size: int, antialias: bool = True
) -> torch.Tensor:
    """Resample images (B, C, H, W) into chips (B, C, S, S) through `transform` (B, 2, 3).

    Bilinear, zeros outside the image (as cv2.warpAffine's default border and dlib's chip
    extraction), differentiable w.r.t. both images and transform. When every image is
    shrunk by 2x or more, `antialias` first box-filters by the common integer factor (like
    dlib's image pyramid before chip extraction), so a large photo does not alias.
    """
    b, _, h, w = images.shape
    inv = _invert(transform)  # chip -> image pixels
    if antialias:
        # Image pixels per chip pixel: sqrt(|det|) of the chip -> image linear part.
        scale = torch.linalg.det(inv[:, :, :2]).abs().sqrt().min().item()
        k = int(scale) if scale >= 2 else 1
        if k > 1:
            images = F.avg_pool2d(images, k, k, ceil_mode=True)
            h, w = images.shape[2:]
            # pooled pixel u' = (u + 0.5) / k - 0.5
            inv = torch.cat([inv[:, :, :2] / k, ((inv[:, :, 2] + 0.5) / k - 0.5)[:, :, None]], 2)
    coords = torch.arange(size, dtype=images.dtype, device=images.device)
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")
    chip_px = torch.stack([gx, gy], dim=-1).reshape(1, -1, 2).expand(b, -1, -1)
    src = transform_points(inv.to(images.dtype), chip_px)  # (B, S*S, 2) image pixels
    norm = torch.tensor([w, h], dtype=images.dtype, device=images.device)
    grid = ((2 * src + 1) / norm - 1).reshape(b, size, size, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def align_chips(
    images: torch.Tensor, landmarks68: torch.Tensor, template: AlignmentTemplate
) -> torch.Tensor:
    """images (B, C, H, W), landmarks68 (B, 68, 2) -> chips (B, C, S, S) for `template`."""
    return warp_to_chip(images, alignment_transform(landmarks68, template), template.size)
