"""The ICT-FaceKit morphable model as a torch module.

vertices = neutral + sum_k identity_k * identity_basis_k + sum_e expression_e *
expression_basis_e, in centimetres, Y up, the face looking along +Z. Identity
coefficients are standardised (about N(0, 1)); expression weights are blendshape
weights in [0, 1].
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor, nn

from engine.assets import ict_facekit
from engine.facemodel.regions import PARTS, part_names
from engine.paths import ganfit_home


def triangulate(polygon_sizes: np.ndarray, polygon_corners: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fan-split polygons into triangles.

    polygon_sizes: (P,), polygon_corners: (L,) corner values (vertex or UV indices).
    Returns triangles (F, 3) of corner positions into polygon_corners' loop order and
    (F,) the polygon of each triangle; the caller gathers whatever per-corner data it needs.
    """
    starts = np.concatenate([[0], np.cumsum(polygon_sizes)[:-1]])
    tris_per_polygon = polygon_sizes - 2
    polygon = np.repeat(np.arange(len(polygon_sizes)), tris_per_polygon)
    first = np.repeat(starts, tris_per_polygon)
    k = np.arange(len(polygon)) - np.repeat(np.cumsum(tris_per_polygon) - tris_per_polygon,
                                            tris_per_polygon)
    loops = np.stack([first, first + k + 1, first + k + 2], axis=1)
    return loops, polygon


@dataclass(frozen=True)
class VertexSubset:
    """Some vertices of a face model. index: (V',) or None for all; neutral: (V',3);
    basis: (K+E, V'*3) identity then expression offsets."""

    index: Tensor | None
    neutral: Tensor
    basis: Tensor


class FaceModel(nn.Module):
    """Shape, expressions, topology, UVs and landmarks of a linear face model.

    Buffers (V vertices, K identity modes, E expressions, F triangles, P polygons,
    L polygon corners):
      neutral (V,3), identity_basis (K,V,3), expression_basis (E,V,3),
      landmark_vertices (68,), triangles (F,3), triangle_polygons (F,),
      triangle_uvs (F,3,2), polygon_sizes (P,), polygon_vertices (L,), loop_uvs (L,2),
      polygon_materials (P,).
    """

    neutral: Tensor
    identity_basis: Tensor
    expression_basis: Tensor
    polygon_sizes: Tensor
    polygon_vertices: Tensor
    loop_uvs: Tensor
    polygon_materials: Tensor
    triangles: Tensor
    triangle_polygons: Tensor
    triangle_uvs: Tensor
    landmark_vertices: Tensor

    def __init__(self, arrays: dict[str, np.ndarray]):
        super().__init__()
        neutral = torch.from_numpy(arrays["neutral"].astype(np.float32))
        self.register_buffer("neutral", neutral)
        self.register_buffer(
            "identity_basis", torch.from_numpy(arrays["identity_shapes"]) - neutral)
        self.register_buffer(
            "expression_basis", torch.from_numpy(arrays["expression_shapes"]) - neutral)
        self.expression_names: list[str] = [str(n) for n in arrays["expression_names"]]
        self.material_names: list[str] = [str(n) for n in arrays["material_names"]]

        sizes = arrays["polygon_sizes"].astype(np.int64)
        corners = arrays["polygon_vertices"].astype(np.int64)
        loop_uvs = arrays["uvs"][arrays["polygon_uvs"]].astype(np.float32)
        loops, tri_polygons = triangulate(sizes, corners)
        self.register_buffer("polygon_sizes", torch.from_numpy(sizes))
        self.register_buffer("polygon_vertices", torch.from_numpy(corners))
        self.register_buffer("loop_uvs", torch.from_numpy(loop_uvs))
        self.register_buffer(
            "polygon_materials", torch.from_numpy(arrays["polygon_materials"].astype(np.int64)))
        self.register_buffer("triangles", torch.from_numpy(corners[loops]))
        self.register_buffer("triangle_polygons", torch.from_numpy(tri_polygons))
        self.register_buffer("triangle_uvs", torch.from_numpy(loop_uvs[loops]))
        self.register_buffer(
            "landmark_vertices", torch.from_numpy(arrays["landmark_vertices"].astype(np.int64)))

    @property
    def num_vertices(self) -> int:
        return self.neutral.shape[0]

    @property
    def num_identity(self) -> int:
        return self.identity_basis.shape[0]

    @property
    def num_expressions(self) -> int:
        return self.expression_basis.shape[0]

    def forward(self, identity: Tensor, expression: Tensor,
                subset: "VertexSubset | None" = None) -> Tensor:
        """Vertices (B,V,3), or (B,V',3) of a `subset`, from identity (B,K) and
        expression (B,E) coefficients."""
        if subset is None:
            subset = self.subset(None)
        offsets = torch.cat([identity, expression], dim=1) @ subset.basis
        return subset.neutral + offsets.view(identity.shape[0], *subset.neutral.shape)

    def subset(self, vertex_index: Tensor | None) -> "VertexSubset":
        """The model restricted to some vertices (all for None), with its bases gathered
        once, so a fitting loop pays only for the vertices it uses."""
        neutral, ident, expr = self.neutral, self.identity_basis, self.expression_basis
        if vertex_index is not None:
            neutral, ident, expr = neutral[vertex_index], ident[:, vertex_index], \
                expr[:, vertex_index]
        basis = torch.cat([ident, expr]).reshape(ident.shape[0] + expr.shape[0], -1)
        return VertexSubset(vertex_index, neutral, basis)

    def expression_deltas(self, identity: Tensor) -> Tensor:
        """(E,V,3) expression blendshapes for one identity (K,): the model's shapes are
        identity-independent, so this is the basis itself; kept as the one place to
        change if an identity-aware transfer is added."""
        del identity
        return self.expression_basis

    def region_triangles(self, name: str) -> Tensor:
        """(F',) indices into `triangles` of the triangles of a named region."""
        mask = torch.zeros_like(self.triangle_polygons, dtype=torch.bool)
        for part in part_names(name):
            start, end = PARTS[part][1]
            mask |= (self.triangle_polygons >= start) & (self.triangle_polygons < end)
        return torch.nonzero(mask).squeeze(1)

    def region_vertices(self, name: str) -> Tensor:
        """(V',) vertex indices of a named region."""
        ranges = [torch.arange(*PARTS[part][0]) for part in part_names(name)]
        return torch.cat(ranges).to(self.neutral.device)

    def mirror_vertices(self) -> Tensor:
        """(V,) for each vertex, the nearest vertex to its mirror image (x -> -x) on the
        neutral mesh; used for left/right symmetric completion."""
        points = self.neutral.detach().cpu().numpy()
        _, nearest = cKDTree(points).query(points * np.array([-1.0, 1.0, 1.0], np.float32))
        return torch.from_numpy(nearest).to(self.neutral.device)


def load_face_model(device: str | torch.device = "cpu", home: Path | None = None) -> FaceModel:
    """Load the installed ICT-FaceKit model; MissingAssetError (exit 4) when it is not."""
    arrays = ict_facekit.load_arrays(home or ganfit_home())
    return FaceModel(arrays).to(device)
