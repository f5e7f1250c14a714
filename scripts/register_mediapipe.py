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

    .venv/bin/python scripts/register_mediapipe.py --calibrate validation

then (a second step, on the table as written) moves each point to where the project's
detector actually puts it on faces of known shape: on the shape benchmark's Cycles renders
(benchmarks/shape_benchmark.py, cached there; its validation split only, so the test split
stays unseen), each detected point's pixel is cast onto the true mesh seen by the true
camera, carried to the neutral face by its triangle and barycentric weights, and the median
over the renders and their mirror images (points and their partners) is projected back onto
ICT's surface. The table keeps both: the geometric registration ("vertices", "barycentric")
and the calibrated correspondence under "calibrated", which the fit uses
(engine/landmarks/dense.py). Learning where a detector's points lie on the model's surface
is what FLAME-based fitters do with their landmark embedding; here it removes most of the
detector's systematic offset from the registered points (5.5% -> 3.9% of the eye distance on
the validation renders; the rest varies from face to face).
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
from engine.facemodel.geometry import closest_on_triangles, fit_similarity  # noqa: E402
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
MIN_CALIBRATION_SAMPLES = 6  # a point seen fewer times (both sides) keeps its registration


def read_obj_vertices(path: Path) -> np.ndarray:
    """(P, 3) vertex positions of an OBJ file."""
    rows = [line.split()[1:4] for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.array(rows, dtype=np.float64)


def mirror_partners(points: np.ndarray) -> np.ndarray:
    """(P,) for each canonical-mesh point, the point nearest its mirror image (x -> -x)."""
    _, partner = cKDTree(points).query(points * np.array([-1.0, 1.0, 1.0]))
    return partner


def register(mesh: np.ndarray, arrays: dict[str, np.ndarray]) -> dict:
    """The correspondence table (see the module docstring) as a JSON-ready dict."""
    neutral = arrays["neutral"].astype(np.float64)
    triangles = front_triangles(arrays)
    pairs = np.array([(e[0], e[-1]) for e in MEDIAPIPE_TO_IBUG68])
    source = 0.5 * (mesh[pairs[:, 0]] + mesh[pairs[:, 1]])
    target = neutral[arrays["landmark_vertices"]]
    transform = fit_similarity(source, target)
    aligned = transform.apply(mesh)
    landmarks = transform.apply(source)
    warp = RBFInterpolator(landmarks, target - landmarks, kernel="thin_plate_spline",
                           smoothing=1.0)
    warped = aligned + warp(aligned)
    # one non-rigid ICP step: warp again towards the first pass's closest surface points
    tri0, first_bary, _ = closest_on_triangles(warped, neutral[triangles], CANDIDATES)
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
    tri[idx], bary[idx], dist[idx] = closest_on_triangles(query[idx], neutral[triangles],
                                                          CANDIDATES)
    on_surface = (bary[:, :, None] * neutral[triangles[tri]]).sum(1)
    right = np.flatnonzero(~first)
    mirrored = on_surface[partner[right]] * np.array([-1.0, 1.0, 1.0])
    tri[right], bary[right], _ = closest_on_triangles(mirrored, neutral[triangles], CANDIDATES)
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


def front_triangles(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """(F, 3) vertex ids of ICT's front-face triangles."""
    sizes = arrays["polygon_sizes"].astype(np.int64)
    corners = arrays["polygon_vertices"].astype(np.int64)
    loops, polygon = triangulate(sizes, corners)
    return corners[loops][polygon < PARTS["face"][1][1]]


def cast_points(pixels: np.ndarray, projected: np.ndarray, triangles: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Where (P, 2) pixels hit a mesh seen from a camera: (P,) index of the nearest
    front-facing triangle under each pixel (-1 where none) and (P, 3) its
    perspective-correct barycentric weights.

    projected: (V, 3) the mesh's pixel u, v and depth; triangles: (F, 3) vertex ids wound
    counter-clockwise seen from the front."""
    uv, depth = projected[triangles, :2], projected[triangles, 2]  # (F, 3, 2), (F, 3)
    a, b, c = uv[:, 0], uv[:, 1], uv[:, 2]
    area = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    front = area < 0  # image y points down, so a front face turns clockwise on screen
    hit = np.full(len(pixels), -1)
    weights = np.zeros((len(pixels), 3))
    for i, p in enumerate(pixels):
        w0 = ((b - p)[:, 0] * (c - p)[:, 1] - (b - p)[:, 1] * (c - p)[:, 0]) / area
        w1 = ((c - p)[:, 0] * (a - p)[:, 1] - (c - p)[:, 1] * (a - p)[:, 0]) / area
        w2 = 1.0 - w0 - w1
        screen = np.stack([w0, w1, w2], 1)
        inside = front & (screen >= 0).all(1)
        if not inside.any():
            continue
        perspective = screen[inside] / depth[inside]
        perspective /= perspective.sum(1, keepdims=True)
        z = (perspective * depth[inside]).sum(1)
        k = int(z.argmin())
        hit[i] = np.flatnonzero(inside)[k]
        weights[i] = perspective[k]
    return hit, weights


def calibrate(table: dict, arrays: dict[str, np.ndarray], cases: str) -> dict:
    """The correspondence moved to where the detector puts each point (module docstring)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cycles_faces import true_projection
    from shape_benchmark import MODEL, Model, case_spec, parse_cases, render_cases

    from engine.fit.presets import get_preset
    from engine.imageio import load_photo
    from engine.pipeline import detect_views

    neutral = arrays["neutral"].astype(np.float64)
    triangles = front_triangles(arrays)
    outline = set(table["outline"])
    fitted = np.array([i for i in range(len(table["vertices"])) if i not in outline])
    mirror = np.array(table["mirror"])
    specs = [case_spec(int(c)) for c in parse_cases(cases)]
    render_cases(Model(MODEL), specs, MODEL.parents[1] / "shape-benchmark")
    samples: list[list[np.ndarray]] = [[] for _ in table["vertices"]]
    preset = get_preset("preview")
    for spec in specs:
        truth = np.load(Path(spec["image"]).with_name("vertices.npy")).astype(np.float64)
        view = detect_views([load_photo(Path(spec["image"]))], preset, "mediapipe",
                            lambda _: None)[0]
        pixels = view.dense[fitted, :2] * view.scale
        hit, weights = cast_points(pixels, true_projection(spec, truth), triangles)
        reliable = hit >= 0
        for point, tri, bary in zip(fitted[reliable], hit[reliable], weights[reliable],
                                    strict=True):
            on_mean_face = bary @ neutral[triangles[tri]]
            samples[point].append(on_mean_face)
            samples[mirror[point]].append(on_mean_face * np.array([-1.0, 1.0, 1.0]))
    vertices = np.array(table["vertices"])
    barycentric = np.array(table["barycentric"])
    before = (barycentric[:, :, None] * neutral[vertices]).sum(1)
    moved = before.copy()
    for point in fitted:
        if len(samples[point]) >= MIN_CALIBRATION_SAMPLES:
            moved[point] = np.median(np.stack(samples[point]), 0)
    tri, bary, _ = closest_on_triangles(moved[fitted], neutral[triangles], CANDIDATES)
    vertices[fitted], barycentric[fitted] = triangles[tri], bary
    after = (barycentric[:, :, None] * neutral[vertices]).sum(1)
    return {
        "description": "the same correspondence moved to where the project's MediaPipe "
                       "detector puts each point on Cycles renders of known faces",
        "cases": [spec["case"] for spec in specs],
        "vertices": vertices.tolist(),
        "barycentric": np.round(barycentric, 6).tolist(),
        "shift_mm": np.round(np.linalg.norm(after - before, axis=1) * 10, 3).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mesh", type=Path, default=DEFAULT_MESH)
    parser.add_argument("--out", type=Path, default=TABLE_PATH)
    parser.add_argument("--calibrate", default=None, metavar="CASES",
                        help="instead of registering, calibrate the table at --out on these "
                             "shape-benchmark renders (e.g. validation; rendered if not cached)")
    args = parser.parse_args(argv)
    arrays = ict_facekit.load_arrays(ganfit_home())
    if args.calibrate:
        table = json.loads(args.out.read_text())
        table["calibrated"] = calibrate(table, arrays, args.calibrate)
        shift = np.array(table["calibrated"]["shift_mm"])
        print(f"{args.out}: calibrated on {len(table['calibrated']['cases'])} renders; points "
              f"moved median {np.median(shift):.2f} mm, max {shift.max():.2f}")
    else:
        table = register(read_obj_vertices(args.mesh), arrays)
        dist = np.array(table["warp_distance_cm"]) * 10
        print(f"{args.out}: {len(dist)} points; warped-point to surface distance mm: "
              f"median {np.median(dist):.2f}, max {dist.max():.2f}")
    args.out.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
