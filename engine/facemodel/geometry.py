"""Point-set and triangle geometry for registering one mesh to another: NumPy (float64)
in, NumPy out, shapes in each docstring, no meshes or cameras inside (the caller owns
those).

Used by MakeHuman's registration to ICT (engine/texture/makehuman.py), MediaPipe's
(scripts/register_mediapipe.py) and the shape benchmark's aligned error
(benchmarks/shape_benchmark.py), so the three measure and move points the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

# A triangle whose corner angle at its first vertex has sin^2 below this is flat: only its
# edges are searched (the plane projection's barycentrics are rounding noise there).
_FLAT = 1e-10


@dataclass(frozen=True)
class Similarity:
    """points -> scale * points @ rotation.T + translation. rotation: (D, D), a proper
    rotation (determinant +1, never a reflection); translation: (D,)."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """points (..., D) moved by the transform, (..., D)."""
        return self.scale * points @ self.rotation.T + self.translation


def fit_similarity(source: np.ndarray, target: np.ndarray) -> Similarity:
    """The least-squares similarity taking source (N, D) onto target (N, D), point i to
    point i (Umeyama 1991, with scale).

    The rotation comes from the SVD of the cross-covariance; when that would be a
    reflection (det -1: a mirrored or degenerate point set), the smallest singular
    direction is flipped instead, so a mirror image is never "explained" by a reflection.
    """
    mean_s, mean_t = source.mean(0), target.mean(0)
    a, b = source - mean_s, target - mean_t
    u, sigma, vt = np.linalg.svd(b.T @ a / len(a))
    flip = np.ones(len(sigma))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        flip[-1] = -1.0
    rotation = u @ np.diag(flip) @ vt
    scale = float((sigma * flip).sum() / (a**2).sum(1).mean())
    return Similarity(scale, rotation, mean_t - scale * mean_s @ rotation.T)


def closest_point_barycentrics(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Barycentrics (..., 3) of the closest point to points (..., 3) on triangles
    (..., 3, 3) (the two broadcast): the projection onto the triangle's plane when it falls
    inside, else the nearest point on the three edges (the closest point of a triangle is
    on its boundary whenever the projection is outside). A degenerate triangle (a segment
    or a point: its plane projection is meaningless) is searched along its edges only."""
    a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
    e1, e2, rel = b - a, c - a, points - a
    d11, d12, d22 = (e1 * e1).sum(-1), (e1 * e2).sum(-1), (e2 * e2).sum(-1)
    r1, r2 = (rel * e1).sum(-1), (rel * e2).sum(-1)
    area = d11 * d22 - d12**2  # |e1 x e2|^2
    flat = area <= _FLAT * d11 * d22  # a segment or a point: its edges cover it
    det = np.maximum(area, 1e-20)
    s, t = (d22 * r1 - d12 * r2) / det, (d11 * r2 - d12 * r1) / det
    best = np.stack([1 - s - t, s, t], -1)
    inside = ~flat & (s >= 0) & (t >= 0) & (s + t <= 1)
    best_distance = np.where(inside, 0.0, np.inf)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        start, edge = corners[..., i, :], corners[..., j, :] - corners[..., i, :]
        f = np.clip(((points - start) * edge).sum(-1)
                    / np.maximum((edge * edge).sum(-1), 1e-20), 0, 1)
        distance = np.linalg.norm(start + f[..., None] * edge - points, axis=-1)
        closer = ~inside & (distance < best_distance)
        weights = np.zeros_like(best)
        np.put_along_axis(weights, np.full(f.shape + (1,), i), (1 - f)[..., None], -1)
        np.put_along_axis(weights, np.full(f.shape + (1,), j), f[..., None], -1)
        best = np.where(closer[..., None], weights, best)
        best_distance = np.where(closer, distance, best_distance)
    return best


def closest_among(points: np.ndarray, corners: np.ndarray, valid: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of points (P, 3), the closest of its C candidate triangles corners
    (P, C, 3, 3): which candidate (P,), the barycentrics (P, 3) of the closest point on it
    and the distance (P,). valid (P, C), when given, excludes padding candidates (a point
    needs at least one valid one). The first of equally near candidates wins, so callers
    order candidates by preference (e.g. nearest first)."""
    weights = closest_point_barycentrics(points[:, None], corners)
    gap = np.linalg.norm(np.einsum("nck,nckd->ncd", weights, corners) - points[:, None],
                         axis=-1)
    best = np.argmin(gap if valid is None else np.where(valid, gap, np.inf), axis=1)
    rows = np.arange(len(best))
    return best, weights[rows, best], gap[rows, best]


def closest_on_triangles(points: np.ndarray, corners: np.ndarray, candidates: int = 256,
                         chunk: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For points (P, 3) and a triangle soup corners (F, 3, 3): the nearest triangle (P,),
    the barycentrics (P, 3) of the closest point on it and the distance (P,).

    Only the `candidates` triangles with the nearest centroids are searched (exact when
    candidates >= F, and on a mesh of small, even triangles in practice); `chunk` points
    at a time bound the memory (chunk x candidates x 9 floats)."""
    count = min(candidates, len(corners))
    _, near = cKDTree(corners.mean(1)).query(points, k=count)
    near = near.reshape(len(points), count)
    triangle = np.zeros(len(points), np.int64)
    barycentric = np.zeros((len(points), 3))
    distance = np.zeros(len(points))
    for start in range(0, len(points), chunk):
        part = slice(start, start + chunk)
        best, barycentric[part], distance[part] = closest_among(points[part],
                                                                corners[near[part]])
        triangle[part] = near[part][np.arange(len(best)), best]
    return triangle, barycentric, distance
