"""Procedural teeth and gums colour maps (teeth.png, gums.png) in the model's own UV tiles.

A photo rarely shows the teeth and never the gums and tongue well enough to unwrap, but a
flat colour reads as plastic once the jaw opens. So both are generated from the fitted
mesh: ICT-FaceKit unwraps each of its 32 teeth as its own island in the u 3..4 tile and
the gums, palate and tongue as one mesh in 2..3. Each map is one tile (u taken modulo 1,
so materials use the model's UVs unchanged with a repeating sampler).

- Teeth: enamel off-white, yellower towards the gum line (dentine shows through thinner
  enamel there; "towards the gum line" is the 3-D distance to the gums mesh), a greyer,
  slightly translucent edge at the biting end, a faint pink rim where the gum meets the
  tooth, per-tooth brightness and tint, and smooth mottling.
- Gums: coral pink next to the teeth, deeper red on the tongue, palate and floor of the
  mouth, with mottling.
- Both darken towards the back of the mouth. That is occlusion baked into a base colour
  on purpose: the mouth cavity has no AO map, and engines without screen-space AO would
  otherwise show bright molars deep in the mouth.
Colours are plain sRGB choices, not measurements.
"""

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt, zoom
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from torch import Tensor

from engine.facemodel import FaceModel
from engine.render import interpolate
from engine.texture.maps import uv_texels

TEETH_PNG = "teeth.png"
GUMS_PNG = "gums.png"
MOUTH_SIZE = 512  # each map is MOUTH_SIZE square: one UV tile

_ENAMEL = np.array([0.92, 0.89, 0.80])
_CERVICAL = np.array([0.82, 0.72, 0.52])  # near the gum line
_EDGE = np.array([0.78, 0.80, 0.82])  # biting edge, greyish and translucent
_GUM_RIM = np.array([0.80, 0.56, 0.52])  # where the gum meets the tooth
_GINGIVA = np.array([0.86, 0.50, 0.50])
_TONGUE = np.array([0.74, 0.36, 0.38])
_CERVICAL_CM = 0.35  # from the gums mesh, how far the yellower neck of a tooth reaches
_RIM_CM = 0.06
_GINGIVA_CM = 0.45  # from the teeth, how far the gums keep their coral pink
_BACK_DARKENING = {"teeth": 0.35, "gums": 0.5}  # at the back of the mouth


def _components(triangles: np.ndarray) -> np.ndarray:
    """(V,) connected-component label per vertex of a triangle list (F,3) (V: max + 1)."""
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]]])
    count = int(triangles.max()) + 1
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def _surface_points(vertices: np.ndarray, triangles: np.ndarray, steps: int = 4
                    ) -> np.ndarray:
    """(F*K, 3) points on a triangle mesh, a barycentric grid of `steps` per edge in each
    triangle, dense enough that distances to them do not show the vertex spacing."""
    grid = [(i, j) for i in range(steps + 1) for j in range(steps + 1 - i)]
    weights = np.array([(i, j, steps - i - j) for i, j in grid], dtype=np.float64) / steps
    return np.einsum("kc,fcd->fkd", weights, vertices[triangles]).reshape(-1, 3)


def _mottling(size: int, rng: np.random.Generator, cells: int = 24) -> np.ndarray:
    """(size, size) smooth noise, zero mean, unit-ish amplitude (cubic upsampled grid)."""
    grid = rng.normal(0, 1, (cells, cells))
    return zoom(grid, size / cells, order=3, mode="grid-wrap")[:size, :size]


def _fill_background(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Each uncovered texel takes its nearest covered texel's colour, so mipmaps and
    bilinear filtering at island edges do not bleed in black."""
    _, (rows, cols) = distance_transform_edt(~covered, return_indices=True)
    return image[rows, cols]


def _back(positions: np.ndarray) -> np.ndarray:
    """(N,) 0 at the front of the points (largest z) .. 1 at their back."""
    z = positions[:, 2]
    return (z.max() - z) / max(float(z.max() - z.min()), 1e-6)


def _region_texels(model: FaceModel, vertices: Tensor, region: str, size: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Texels of a region's UV tile (taken modulo 1): flat indices (M,), their 3-D points
    (M,3) cm on `vertices` (V,3), and the first vertex of each texel's triangle (M,)."""
    faces = model.region_triangles(region).cpu()
    triangles = model.triangles.cpu()[faces]
    uvs = model.triangle_uvs.cpu()[faces].clone()
    uvs[..., 0] -= uvs[..., 0].mean(1, keepdim=True).floor()
    texel, fragments = uv_texels(uvs, (size, size))
    points = interpolate(vertices.detach().float().cpu()[None], fragments, triangles)[0, 0]
    corner = triangles[fragments.triangle_id.reshape(-1), 0]
    return texel.numpy(), points.numpy().astype(np.float64), corner.numpy()


def _to_image(colours: np.ndarray, texel: np.ndarray, size: int) -> np.ndarray:
    image = np.zeros((size * size, 3))
    covered = np.zeros(size * size, dtype=bool)
    image[texel], covered[texel] = colours, True
    image = _fill_background(image.reshape(size, size, 3), covered.reshape(size, size))
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


@torch.no_grad()
def teeth_texture(model: FaceModel, vertices: Tensor, size: int = MOUTH_SIZE,
                  seed: int = 0) -> np.ndarray:
    """(size, size, 3) uint8 sRGB colour of the teeth tile; vertices (V,3) cm: the fitted
    neutral mesh."""
    rng = np.random.default_rng(seed)
    texel, points, corner = _region_texels(model, vertices, "teeth", size)
    mesh = vertices.detach().cpu().numpy().astype(np.float64)
    gums = model.triangles[model.region_triangles("gums_tongue")].cpu().numpy()
    to_gums = cKDTree(_surface_points(mesh, gums)).query(points)[0]
    teeth_triangles = model.triangles[model.region_triangles("teeth")].cpu().numpy()
    tooth = np.unique(_components(teeth_triangles)[corner], return_inverse=True)[1]
    # How far along its own crown a texel lies: 0 at the gum line .. 1 at the biting edge.
    reach = np.zeros(len(texel))
    for t in np.unique(tooth):
        mine = tooth == t
        reach[mine] = to_gums[mine] / max(float(to_gums[mine].max()), 1e-6)
    cervical = np.clip(1 - to_gums / _CERVICAL_CM, 0, 1)[:, None] ** 1.5
    colour = _ENAMEL + cervical * (_CERVICAL - _ENAMEL)
    edge = np.clip((reach - 0.8) / 0.2, 0, 1)[:, None]
    colour = colour + 0.6 * edge * (_EDGE - colour)
    rim = np.clip(1 - to_gums / _RIM_CM, 0, 1)[:, None]
    colour = colour + rim * (_GUM_RIM - colour)
    count = int(tooth.max()) + 1
    brightness = 1 + rng.normal(0, 0.03, count)
    tint = np.stack([np.ones(count), 1 + rng.normal(0, 0.01, count),
                     1 + rng.normal(0, 0.025, count)], 1)  # bluer or yellower
    colour = colour * brightness[tooth, None] * tint[tooth]
    colour = colour * (1 + 0.03 * _mottling(size, rng).reshape(-1)[texel])[:, None]
    colour = colour * (1 - _BACK_DARKENING["teeth"] * _back(points))[:, None]
    return _to_image(colour, texel, size)


@torch.no_grad()
def gums_texture(model: FaceModel, vertices: Tensor, size: int = MOUTH_SIZE,
                 seed: int = 0) -> np.ndarray:
    """(size, size, 3) uint8 sRGB colour of the gums, palate and tongue tile; vertices
    (V,3) cm: the fitted neutral mesh."""
    rng = np.random.default_rng(seed + 1)
    texel, points, _ = _region_texels(model, vertices, "gums_tongue", size)
    teeth = vertices.detach().cpu().numpy()[model.region_vertices("teeth").cpu().numpy()]
    near_teeth = np.clip(1 - cKDTree(teeth).query(points)[0] / _GINGIVA_CM, 0, 1)[:, None]
    colour = _TONGUE + near_teeth * (_GINGIVA - _TONGUE)
    colour = colour * (1 + 0.06 * _mottling(size, rng, cells=48).reshape(-1)[texel])[:, None]
    colour = colour * (1 - _BACK_DARKENING["gums"] * _back(points))[:, None]
    return _to_image(colour, texel, size)


def mouth_maps(model: FaceModel, vertices: Tensor) -> dict[str, tuple[str, np.ndarray]]:
    """role -> (file name, image) of the teeth and gums maps for the result folder."""
    return {"teeth": (TEETH_PNG, teeth_texture(model, vertices)),
            "gums": (GUMS_PNG, gums_texture(model, vertices))}
