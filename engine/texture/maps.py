"""Surface maps beside the albedo, in the skin atlas's UV layout (atlas.py): a tangent-space
normal map (OpenGL convention, +Y up), a roughness map and an ambient-occlusion map.

- Normal: fine relief (pores, creases) as a height field from the albedo's high-pass
  luminance where the photo saw the skin (dark pores and creases are lower), turned into
  tangent-space normals in the UV frame (x along +u, y along +v), the frame clients
  build from the UVs (MikkTSpace). Unseen skin is flat. This is a
  heuristic detail map, not measured geometry: a single photo has no finer geometry.
- Roughness: skin regions differ (lips moist and smooth, the nose and forehead oily,
  brows hairy and rough), placed from the fitted 68 landmarks on the mesh, softly blended,
  with the relief adding a little roughness in pores.
- Ambient occlusion: baked from the mesh (all opaque parts: the skin, mouth socket,
  gums, teeth and eyeballs occlude): per vertex, the cosine-weighted share of
  `AO_DIRECTIONS` directions over the normal's hemisphere in which an orthographic depth
  map from that direction (the project's rasteriser) sees the vertex; interpolated
  over each texel's triangle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.facemodel import FaceModel
from engine.render import interpolate, rasterize, uv_screen_vertices, vertex_normals
from engine.render.rasterize import Fragments
from engine.texture.atlas import skin_atlas_triangles

DEFAULT_SIZE = 2048  # map width; the atlas is 2:1, so 2048 x 1024 ("2K")
AO_DIRECTIONS = 32
AO_RESOLUTION = 384  # depth map side, pixels (32 x 384: 5 s on a CPU core)
AO_BIAS_CM = 0.15
_OCCLUDERS = ("face", "head_neck", "mouth_socket", "eye_socket_left", "eye_socket_right",
              "gums_tongue", "teeth", "eyeball_left", "eyeball_right")
# Roughness of skin regions (glTF roughness, 0 mirror .. 1 matte): plain choices in the
# range PBR skin shaders use, not measurements.
ROUGHNESS = {"skin": 0.55, "tzone": 0.45, "lips": 0.38, "brows": 0.75}
_PORE_ROUGHNESS = 0.08  # added where the relief is deepest
_DETAIL_SIGMA = 0.0025  # high-pass blur, as a share of the map width
_DETAIL_STRENGTH = 6.0  # normal tilt per unit of luminance change per texel


@dataclass(frozen=True)
class SurfaceMaps:
    """normal (H,W,3) uint8 RGB (tangent space, +Y up), roughness (H,W) uint8,
    ao (H,W) uint8 (255: unoccluded)."""

    normal: np.ndarray
    roughness: np.ndarray
    ao: np.ndarray


def uv_texels(triangle_uvs: Tensor, size: tuple[int, int]) -> tuple[Tensor, Fragments]:
    """Covered texels (M,) flat indices and their fragments packed as a (1, 1, M) image."""
    screen, uv_triangles = uv_screen_vertices(triangle_uvs, size)
    fragments = rasterize(screen, uv_triangles, size)
    face = fragments.triangle_id.reshape(-1)
    texel = (face >= 0).nonzero().squeeze(1)
    count = texel.numel()
    packed = Fragments(triangle_id=face[texel].view(1, 1, count),
                       barycentrics=fragments.barycentrics.reshape(-1, 3)[texel].view(
                           1, 1, count, 3),
                       depth=torch.ones(1, 1, count))
    return texel, packed


def fibonacci_directions(count: int) -> Tensor:
    """(count, 3) unit vectors spread evenly over the sphere."""
    i = torch.arange(count, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / count
    phi = i * math.pi * (3 - math.sqrt(5))
    r = torch.sqrt(1 - z * z)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], 1).float()


def vertex_ambient_occlusion(vertices: Tensor, normals: Tensor, occluders: Tensor,
                             directions: int = AO_DIRECTIONS,
                             resolution: int = AO_RESOLUTION) -> Tensor:
    """(V,) ambient occlusion per vertex, 1 unoccluded .. 0 enclosed.

    vertices (V,3) cm; normals (V,3) unit; occluders (F,3) triangles that cast shadows.
    """
    lo, hi = vertices.min(0).values, vertices.max(0).values
    centre, radius = (lo + hi) / 2, float((hi - lo).norm()) / 2 + 1.0
    scale = (resolution - 1) / (2 * radius)
    seen = torch.zeros(len(vertices))
    total = torch.zeros(len(vertices))
    for d in fibonacci_directions(directions):
        helper = torch.tensor([1.0, 0, 0]) if abs(float(d[0])) < 0.9 else torch.tensor(
            [0, 1.0, 0])
        e1 = F.normalize(torch.linalg.cross(d, helper), dim=0)
        e2 = torch.linalg.cross(d, e1)
        local = vertices - centre
        screen = torch.stack([(local @ e1 + radius) * scale, (local @ e2 + radius) * scale,
                              2 * radius - local @ d + 1.0], 1)
        fragments = rasterize(screen[None], occluders, (resolution, resolution))
        depth_map, covered = fragments.depth[0], fragments.triangle_id[0]
        x = screen[:, 0].round().long().clamp(0, resolution - 1)
        y = screen[:, 1].round().long().clamp(0, resolution - 1)
        front = torch.where(covered[y, x] >= 0, depth_map[y, x], torch.inf)
        visible = screen[:, 2] <= front + AO_BIAS_CM
        cosine = (normals @ d).clamp(min=0)
        seen += cosine * visible
        total += cosine
    return (seen / total.clamp(min=1e-6)).clamp(0, 1)


def _luminance(albedo: Tensor) -> Tensor:
    """(H,W) Rec. 709 luminance of an albedo (3,H,W)."""
    return 0.2126 * albedo[0] + 0.7152 * albedo[1] + 0.0722 * albedo[2]


def _blur(image: Tensor, sigma: float) -> Tensor:
    """(H,W) separable Gaussian blur with reflect padding."""
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    out = F.pad(image[None, None], (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, kernel.view(1, 1, -1, 1))[0, 0]


def relief(albedo: Tensor, seen: Tensor, size: tuple[int, int]) -> Tensor:
    """(H,W) height field (luminance units, about -0.1..0.1) of fine detail: the
    albedo's (3,h,w) high-pass luminance where seen (h,w) bool, faded out at its edge."""
    height, width = size
    lum = F.interpolate(_luminance(albedo)[None, None], size=size, mode="bilinear",
                        align_corners=False)[0, 0]
    sigma = _DETAIL_SIGMA * width
    detail = lum - _blur(lum, sigma)
    weight = F.interpolate(seen[None, None].float(), size=size, mode="bilinear",
                           align_corners=False)[0, 0]
    weight = _blur(weight, 2 * sigma).clamp(0, 1) ** 2
    return detail * weight


def tangent_normals(height_field: Tensor, strength: float = _DETAIL_STRENGTH) -> Tensor:
    """(H,W,3) unit tangent-space normals of a height field (H,W), row 0 at the top of
    the image (v up there): x along +u, y along +v (OpenGL), z out of the surface."""
    padded = F.pad(height_field[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    du = (padded[1:-1, 2:] - padded[1:-1, :-2]) / 2
    dv = -(padded[2:, 1:-1] - padded[:-2, 1:-1]) / 2  # rows go down, v goes up
    normal = torch.stack([-strength * du, -strength * dv, torch.ones_like(du)], -1)
    return F.normalize(normal, dim=-1)


def _segment_distance(points: Tensor, polyline: Tensor) -> Tensor:
    """(N,) distance from points (N,2) to an open polyline (K,2)."""
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    t = ((points[:, None] - a[None]) * ab[None]).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-9)
    nearest = a[None] + t.clamp(0, 1)[..., None] * ab[None]
    return (points[:, None] - nearest).norm(dim=-1).min(1).values


def _inside(points: Tensor, polygon: Tensor) -> Tensor:
    """(N,) bool: points (N,2) inside a closed polygon (K,2) (even-odd rule)."""
    x, y = points[:, 0:1], points[:, 1:2]
    a, b = polygon, polygon.roll(-1, 0)
    crosses = (a[None, :, 1] > y) != (b[None, :, 1] > y)
    t = (y - a[None, :, 1]) / (b[None, :, 1] - a[None, :, 1] + 1e-12)
    x_cross = a[None, :, 0] + t * (b[None, :, 0] - a[None, :, 0])
    return ((crosses & (x < x_cross)).sum(1) % 2) == 1


def _soft_region(points: Tensor, polygon: Tensor, feather: float) -> Tensor:
    """(N,) 1 inside the closed polygon (K,2), falling to 0 over `feather` cm outside."""
    closed = torch.cat([polygon, polygon[:1]])
    outside = _segment_distance(points, closed)
    return torch.where(_inside(points, polygon), 1.0, (1 - outside / feather).clamp(0, 1))


def region_roughness(positions: Tensor, normals: Tensor, landmarks: Tensor) -> Tensor:
    """(N,) roughness at skin points (N,3) cm with normals (N,3), from the fitted
    landmarks (68,3) cm (iBUG order): lips, brows, T-zone, the rest skin."""
    xy = positions[:, :2]
    front = (normals[:, 2] > 0.2).float()
    lips = _soft_region(xy, landmarks[48:60, :2], 0.25)
    brow_distance = torch.minimum(_segment_distance(xy, landmarks[17:22, :2]),
                                  _segment_distance(xy, landmarks[22:27, :2]))
    brows = (1 - (brow_distance - 0.35) / 0.3).clamp(0, 1)
    nose = torch.stack([landmarks[27], landmarks[31], landmarks[33], landmarks[35]])[:, :2]
    brow_top = landmarks[17:27, 1].max()
    inner = landmarks[[19, 24], 0]
    forehead = torch.stack([
        torch.stack([inner[0], brow_top + 0.6]), torch.stack([inner[1], brow_top + 0.6]),
        torch.stack([inner[1], brow_top + 5.0]), torch.stack([inner[0], brow_top + 5.0])])
    tzone = torch.maximum(_soft_region(xy, nose, 0.5), _soft_region(xy, forehead, 1.0))
    value = torch.full((len(positions),), ROUGHNESS["skin"])
    for region, amount in ((tzone, ROUGHNESS["tzone"]), (brows, ROUGHNESS["brows"]),
                           (lips, ROUGHNESS["lips"])):
        weight = region * front
        value = value * (1 - weight) + amount * weight
    return value


def _to_image(values: Tensor, texel: Tensor, size: tuple[int, int], fill: Tensor) -> Tensor:
    """Scatter per-texel values (M,C) into a (H,W,C) image filled with `fill` (C,)."""
    height, width = size
    image = fill.expand(height * width, -1).clone()
    image[texel] = values
    return image.view(height, width, -1)


@torch.no_grad()
def bake_maps(model: FaceModel, vertices: Tensor, albedo: Tensor, seen: Tensor,
              width: int = DEFAULT_SIZE) -> SurfaceMaps:
    """The skin's normal, roughness and AO maps, (width/2, width), in the atlas layout.

    vertices (V,3) cm: the fitted neutral mesh; albedo (3,h,w) in [0,1] and seen (h,w)
    bool: the baked atlas and which texels the photos saw.
    """
    vertices = vertices.detach().float().cpu()
    size = (width // 2, width)
    triangles, uvs = skin_atlas_triangles(model)
    triangles, uvs = triangles.cpu(), uvs.cpu()
    texel, fragments = uv_texels(uvs, size)

    normals = vertex_normals(vertices[None], model.triangles.cpu())[0]
    positions = interpolate(vertices[None], fragments, triangles)[0, 0]
    normal = F.normalize(interpolate(normals[None], fragments, triangles)[0, 0], dim=-1)

    occluders = torch.cat([model.region_triangles(p).cpu() for p in _OCCLUDERS])
    ao_vertex = vertex_ambient_occlusion(vertices, normals, model.triangles.cpu()[occluders])
    ao = interpolate(ao_vertex[None, :, None], fragments, triangles)[0, 0]

    height_field = relief(albedo.detach().float().cpu(), seen.cpu(), size)
    detail = tangent_normals(height_field)
    rough = region_roughness(positions, normal, vertices[model.landmark_vertices.cpu()])
    depth = (-height_field.reshape(-1)[texel]).clamp(min=0) / 0.05
    rough = (rough + _PORE_ROUGHNESS * depth.clamp(max=1)).clamp(0, 1)

    flat = torch.tensor([0.0, 0.0, 1.0])
    detail_image = torch.where(
        _to_image(torch.ones(len(texel), 1), texel, size, torch.zeros(1)) > 0,
        detail, flat)
    return SurfaceMaps(
        normal=_to_uint8(detail_image * 0.5 + 0.5),
        roughness=_to_uint8(_to_image(rough[:, None], texel, size,
                                      torch.tensor([ROUGHNESS["skin"]]))[..., 0]),
        ao=_to_uint8(_to_image(ao, texel, size, torch.ones(1))[..., 0]),
    )


def _to_uint8(image: Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


# Result-folder file names of the maps, by role (DESIGN.md's `maps`).
MAP_FILES = {"normal": "normal.png", "roughness": "roughness.png", "ao": "ao.png"}


def map_files(surface: SurfaceMaps) -> dict[str, tuple[str, np.ndarray]]:
    """role -> (file name, image) for the result folder."""
    return {role: (name, getattr(surface, role)) for role, name in MAP_FILES.items()}
