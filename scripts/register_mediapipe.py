"""Build engine/landmarks/mediapipe_ict.json: where each MediaPipe face-mesh point lies on
ICT-FaceKit's surface.

    .venv/bin/python scripts/register_mediapipe.py [--mesh ../shared/assets/mediapipe-face/
        canonical_face_model.obj] [--out engine/landmarks/mediapipe_ict.json]

MediaPipe's canonical face mesh (Apache-2.0; vertex i is output point i) is registered once
to ICT's neutral mesh: a similarity transform (Umeyama) and a thin-plate-spline warp, both
from the 68 iBUG points the two share (engine/landmarks/mediapipe_mesh.py's table and
ICT's landmark vertices), then each warped point's closest point on ICT's front-face
triangles. Points on the subject's right are the mirror images of their left partners and
midline points are projected from x = 0, so mirror pairs stay mirrored. The table stores
per point the three ICT vertex ids of its triangle and the barycentric weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.assets import ict_facekit  # noqa: E402
from engine.facemodel.model import triangulate  # noqa: E402
from engine.facemodel.regions import PARTS  # noqa: E402
from engine.landmarks.dense import TABLE_PATH  # noqa: E402
from engine.landmarks.mediapipe_mesh import MEDIAPIPE_TO_IBUG68  # noqa: E402
from engine.paths import ganfit_home  # noqa: E402

DEFAULT_MESH = ROOT.parent / "shared" / "assets" / "mediapipe-face" / "canonical_face_model.obj"
# MediaPipe's FACEMESH_FACE_OVAL vertices (mediapipe.solutions.face_mesh_connections): on
# the silhouette in most poses, so they slide and are not fitted as fixed surface points.
FACE_OVAL = (10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172,
             176, 234, 251, 284, 288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389,
             397, 400, 454)
MIDLINE_CM = 1e-3  # canonical-mesh points this close to x = 0 are on the midline
CANDIDATES = 256  # triangles (nearest centroids) searched per point
ICP_SMOOTHING = 10.0  # thin-plate smoothing of the second, surface-following warp


def read_obj_vertices(path: Path) -> np.ndarray:
    """(P, 3) vertex positions of an OBJ file."""
    rows = [line.split()[1:4] for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.array(rows, dtype=np.float64)


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale, R (3, 3), t (3,)) minimising |scale R source + t - target| (Umeyama)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, d, vt = np.linalg.svd(t.T @ s / len(s))
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / s.var(0).sum())
    return scale, rotation, mu_t - scale * rotation @ mu_s


def closest_on_triangles(points: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, ...]:
    """For (P, 3) points and (F, 3, 3) triangles: (P,) nearest triangle, (P, 3) barycentric
    weights of the closest point on it, (P,) distance (region tests of Ericson, Real-Time
    Collision Detection 5.1.5, vectorised over all triangles)."""
    best_tri = np.zeros(len(points), dtype=np.int64)
    best_bary = np.zeros((len(points), 3))
    best_dist = np.full(len(points), np.inf)
    _, near = cKDTree(corners.mean(1)).query(points, k=min(CANDIDATES, len(corners)))
    for i, p in enumerate(points):
        a, b, c = corners[near[i], 0], corners[near[i], 1], corners[near[i], 2]
        ab, ac, ap = b - a, c - a, p - a
        d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
        bp = p - b
        d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
        cp = p - c
        d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
        va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
        denom = np.where(np.abs(va + vb + vc) < 1e-12, 1e-12, va + vb + vc)
        v, w = vb / denom, vc / denom  # interior
        bary = np.stack([1 - v - w, v, w], 1)
        edges = (  # (condition, barycentric) for vertex and edge regions, later ones win
            ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),
             _edge((d4 - d3) / np.maximum((d4 - d3) + (d5 - d6), 1e-12), 1, 2)),
            ((vb <= 0) & (d2 >= 0) & (d6 <= 0), _edge(d2 / np.maximum(d2 - d6, 1e-12), 0, 2)),
            ((vc <= 0) & (d1 >= 0) & (d3 <= 0), _edge(d1 / np.maximum(d1 - d3, 1e-12), 0, 1)),
            ((d6 >= 0) & (d5 <= d6), _corner(len(a), 2)),
            ((d3 >= 0) & (d4 <= d3), _corner(len(a), 1)),
            ((d1 <= 0) & (d2 <= 0), _corner(len(a), 0)),
        )
        for mask, value in edges:
            bary = np.where(mask[:, None], value, bary)
        closest = (bary[:, :, None] * corners[near[i]]).sum(1)
        dist = np.linalg.norm(closest - p, axis=1)
        j = int(dist.argmin())
        best_tri[i], best_bary[i], best_dist[i] = near[i, j], bary[j], dist[j]
    return best_tri, best_bary, best_dist


def _edge(t: np.ndarray, first: int, second: int) -> np.ndarray:
    """(F, 3) barycentrics of the point t of the way from corner `first` to `second`."""
    out = np.zeros((len(t), 3))
    out[:, first], out[:, second] = 1 - t, t
    return out


def _corner(count: int, index: int) -> np.ndarray:
    out = np.zeros((count, 3))
    out[:, index] = 1.0
    return out


def mirror_partners(points: np.ndarray) -> np.ndarray:
    """(P,) for each canonical-mesh point, the point nearest its mirror image (x -> -x)."""
    _, partner = cKDTree(points).query(points * np.array([-1.0, 1.0, 1.0]))
    return partner


def register(mesh: np.ndarray, arrays: dict[str, np.ndarray]) -> dict:
    """The correspondence table (see the module docstring) as a JSON-ready dict."""
    neutral = arrays["neutral"].astype(np.float64)
    sizes = arrays["polygon_sizes"].astype(np.int64)
    corners = arrays["polygon_vertices"].astype(np.int64)
    loops, polygon = triangulate(sizes, corners)
    triangles = corners[loops][polygon < PARTS["face"][1][1]]  # front-face triangles
    pairs = np.array([(e[0], e[-1]) for e in MEDIAPIPE_TO_IBUG68])
    source = 0.5 * (mesh[pairs[:, 0]] + mesh[pairs[:, 1]])
    target = neutral[arrays["landmark_vertices"]]
    scale, rotation, shift = similarity(source, target)
    aligned = scale * mesh @ rotation.T + shift
    landmarks = scale * source @ rotation.T + shift
    warp = RBFInterpolator(landmarks, target - landmarks, kernel="thin_plate_spline",
                           smoothing=1.0)
    warped = aligned + warp(aligned)
    # one non-rigid ICP step: warp again towards the first pass's closest surface points
    tri0, first_bary, _ = closest_on_triangles(warped, neutral[triangles])
    projected = (first_bary[:, :, None] * neutral[triangles[tri0]]).sum(1)
    controls = np.vstack([landmarks, aligned])
    goals = np.vstack([target, projected])
    smoothing = np.concatenate([np.full(len(landmarks), 1.0), np.full(len(aligned),
                                                                    ICP_SMOOTHING)])
    icp = RBFInterpolator(controls, goals - controls, kernel="thin_plate_spline",
                          smoothing=smoothing)
    warped = aligned + icp(aligned)
    partner = mirror_partners(mesh)
    midline = np.abs(mesh[:, 0]) < MIDLINE_CM
    left = (mesh[:, 0] >= MIDLINE_CM)  # fitted directly; the right side mirrors these
    first = left | midline
    query = warped.copy()
    query[midline, 0] = 0.0
    tri = np.zeros(len(mesh), dtype=np.int64)
    bary = np.zeros((len(mesh), 3))
    dist = np.zeros(len(mesh))
    idx = np.flatnonzero(first)
    tri[idx], bary[idx], dist[idx] = closest_on_triangles(query[idx], neutral[triangles])
    on_surface = (bary[:, :, None] * neutral[triangles[tri]]).sum(1)
    right = np.flatnonzero(~first)
    mirrored = on_surface[partner[right]] * np.array([-1.0, 1.0, 1.0])
    tri[right], bary[right], _ = closest_on_triangles(mirrored, neutral[triangles])
    dist[right] = dist[partner[right]]
    return {
        "description": "MediaPipe face-mesh point i -> a point on ICT-FaceKit's neutral "
                       "surface: vertex ids of its triangle and barycentric weights",
        "source": "MediaPipe canonical_face_model.obj (github.com/google-ai-edge/mediapipe, "
                  "mediapipe/modules/face_geometry/data, commit "
                  "85c0cdc7d70653888903c88df45962b764296342), registered to ICT-FaceKit "
                  "(MIT) by scripts/register_mediapipe.py",
        "licence": "derived from MediaPipe's Apache-2.0 canonical face mesh (Apache License "
                   "2.0, Copyright Google LLC) and ICT-FaceKit's MIT-licensed neutral mesh",
        "vertices": triangles[tri].tolist(),
        "barycentric": np.round(bary, 6).tolist(),
        "mirror": partner.tolist(),
        "outline": list(FACE_OVAL),
        "warp_distance_cm": np.round(dist, 4).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mesh", type=Path, default=DEFAULT_MESH)
    parser.add_argument("--out", type=Path, default=TABLE_PATH)
    args = parser.parse_args(argv)
    table = register(read_obj_vertices(args.mesh), ict_facekit.load_arrays(ganfit_home()))
    args.out.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    dist = np.array(table["warp_distance_cm"]) * 10
    print(f"{args.out}: {len(dist)} points; warped-point to surface distance mm: "
          f"median {np.median(dist):.2f}, max {dist.max():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
