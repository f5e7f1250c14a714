"""MakeHuman's CC0 full-head skin textures carried into ICT-FaceKit's skin atlas.

Photos never show the scalp, the ears' backs, the back of the head or the neck under a
collar, so a texture model learned from portraits alone only extrapolates there. The 14
MakeHuman 1.x skin textures (CC0) paint the whole head. To use them, MakeHuman's base mesh
(AGPL data: read at build time from ../shared, never shipped, nothing derived from it kept
in the repository) is registered to ICT's neutral mesh: a similarity from nine anatomical
points found by the same rules on both meshes (eye and mouth corners on the eye and mouth
openings, nose tip, top and back of the head), then a non-rigid closest-point fit whose
displacement is kept smooth by a Laplacian and pinned at those points. Every atlas texel's
point on ICT's surface then takes the colour at its closest point on the registered
MakeHuman head: a training sample in the data builder's format, trusted on the scalp,
ears, back of the head and upper neck, less on the face (its features are MakeHuman's,
not quite where ICT's are; the portraits cover it) and not at all where the two surfaces
part. Only the maps' head island is looked up; it ends mid-neck, so ICT's lower neck keeps
the portraits' data and the model's fill. The maps are brighter than the de-lit portraits:
one per-channel gain, matched on the light-skinned maps' face, scales all 14
(`exposure_gain`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree

from engine.facemodel import FaceModel
from engine.facemodel.geometry import closest_among, fit_similarity
from engine.facemodel.ict import NARROW_FACE_VERTICES
from engine.facemodel.model import triangulate
from engine.render import rasterize, sample_texture, uv_screen_vertices
from engine.texture.atlas import atlas_positions
from engine.texture.dataset import Sample, load_sample, sample_paths, save_sample
from engine.texture.unwrap import push_pull_fill

SKINS = Path("assets/makehuman-skins")  # under the shared data root
SOURCE = ("github.com/brighter-ai/makehuman, commit e181c53485eb5a3b1923ea555d4a292cc92856a5 "
          "(makehuman/data/skins/textures/)")
LICENCE = "CC0 1.0 (MakeHuman 1.x system skin textures)"
SAMPLE_PREFIX = "makehuman-"
_DECIMETRES_TO_CM = 10.0  # MakeHuman's base mesh is in decimetres, ICT's in centimetres
# Registration points, in order: right eye outer and inner corner, left eye inner and outer
# corner, mouth right and left corner, nose tip, top of the head, back of the head (the
# subject's right is -x). ICT's 68 landmarks' 17..67 mark brows, nose, eyes and mouth.
_FEATURE_LANDMARKS = slice(17, 68)
_NICP_STIFFNESS = (30.0, 10.0, 3.0, 1.0)  # Laplacian weight per round, stiff to supple
_NICP_ROUNDS = 3  # closest-point updates per stiffness
_LANDMARK_WEIGHT = 10.0
_MAX_MATCH_CM = 2.0  # a closest point further than this is no correspondence
# Bake confidence: full up to the first distance (cm) between the surfaces, none past the
# second. On the face (ICT's narrow face, which the portraits cover) it falls smoothly from
# 1 at the face's rim to FACE_CONFIDENCE _BLEND_CM inside (a step would print the rim into
# the model's mean, the two sources' colours differing a little), and to FEATURE_CONFIDENCE
# at the brows, eyes, nose and mouth (within the first feature distance of their landmarks,
# rising by the second): MakeHuman's features sit a little off ICT's, but a little of them
# keeps the features in the components that MakeHuman's dark skins bring.
_TRUST_DISTANCE_CM = (0.3, 1.0)
FACE_CONFIDENCE = 0.5
FEATURE_CONFIDENCE = 0.15
_BLEND_CM = 3.0
_FEATURE_DISTANCE_CM = (1.2, 2.5)
_TEXTURE_SIZE = 512  # the 2048^2 maps are box-filtered to this before bilinear lookup
# The de-lit portraits and MakeHuman's maps differ in exposure: the light-skinned maps'
# mean face colour is matched to the portraits' (one gain per channel for all 14 maps, so
# the dark-skinned ones stay dark).
_LIGHT_SKIN_TAG = "lightskinned"


@dataclass(frozen=True)
class Surface:
    """A triangle mesh to register or look up. vertices: (V, 3) cm; triangles: (F, 3);
    uvs: (F, 3, 2) per-corner UVs (OBJ convention) or None."""

    vertices: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray | None = None


def read_makehuman_head(path: Path) -> tuple[Surface, np.ndarray]:
    """The head UV island of MakeHuman's base mesh (its vertices in cm, compacted) and its
    eyeball centres (2, 3) cm, left (+x) first.

    The island is the body group's UV-connected faces that hold the highest vertex; only it
    is looked up, so the maps' other islands and the "makehuman.org" strip never are.
    """
    text = path.read_text()
    lines = text.split("\n")
    vertices = np.array(" ".join(s[2:] for s in lines if s.startswith("v ")).split(),
                        float).reshape(-1, 3) * _DECIMETRES_TO_CM
    uvs = np.array(" ".join(s[3:] for s in lines if s.startswith("vt ")).split(),
                   float).reshape(-1, 2)
    groups: dict[str, list[list[str]]] = {}
    group = ""
    for line in lines:
        if line.startswith("g "):
            group = line[2:].strip()
        elif line.startswith("f "):
            groups.setdefault(group, []).append(line[2:].split())
    eyes = np.stack([vertices[_corners(groups[name])[0]].mean(0)
                     for name in ("helper-l-eye", "helper-r-eye")])
    faces = groups["body"]
    sizes = np.array([len(f) for f in faces])
    corner_vertices, corner_uvs = _corners(faces)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # polygons sharing a UV index are in one island
    polygon = np.repeat(np.arange(len(faces)), sizes)
    links = sparse.coo_matrix((np.ones(len(polygon)), (polygon, corner_uvs)),
                              shape=(len(faces), len(uvs))).tocsr()
    _, island = connected_components(links @ links.T, directed=False)
    head = island == island[polygon[np.argmax(vertices[corner_vertices, 1])]]
    corners = np.concatenate([np.arange(s, s + n)
                              for s, n in zip(starts[head], sizes[head], strict=True)])
    loops, _ = triangulate(sizes[head], corners)
    used, triangles = np.unique(corner_vertices[corners][loops], return_inverse=True)
    return Surface(vertices[used], triangles.reshape(-1, 3),
                   uvs[corner_uvs[corners][loops]]), eyes


def _corners(faces: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Vertex and UV indices (L,) (0-based) of OBJ `v/vt` face corners, in order."""
    pairs = np.array([c.split("/")[:2] for f in faces for c in f], dtype=np.int64) - 1
    return pairs[:, 0], pairs[:, 1]


def ict_skin(model: FaceModel) -> tuple[Surface, np.ndarray]:
    """ICT's skin (face + head/neck) at the neutral shape, its vertex indices being the
    model's, and the eyeball centres (2, 3) cm, left (+x) first."""
    vertices = model.neutral.detach().cpu().numpy().astype(float)
    triangles = model.triangles[model.region_triangles("skin")].cpu().numpy()
    eyes = np.stack([vertices[model.region_vertices(name).cpu().numpy()].mean(0)
                     for name in ("eyeball_left", "eyeball_right")])
    return Surface(vertices, triangles), eyes


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """The vertex indices of each connected run of boundary edges (holes and rims)."""
    edges = np.sort(triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    border = unique[counts == 1]
    size = int(triangles.max()) + 1
    graph = sparse.coo_matrix((np.ones(len(border)), (border[:, 0], border[:, 1])),
                              shape=(size, size))
    _, label = connected_components(graph, directed=False)
    on_border = np.unique(border)
    return [on_border[label[on_border] == k] for k in np.unique(label[on_border])]


def find_landmarks(surface: Surface, eyes: np.ndarray) -> np.ndarray:
    """(9,) vertex indices of the nine registration points (order above), by rules that
    need no hand-picked index, so the same code finds them on both meshes.

    eyes: (2, 3) eyeball centres, left (+x) first. The eye openings are the boundary loops
    nearest the eyeballs, the mouth opening the loop nearest a point one eye distance below
    the eyes' midpoint; corners are their extreme vertices along x.
    """
    points = surface.vertices
    loops = boundary_loops(surface.triangles)
    centres = np.stack([points[loop].mean(0) for loop in loops])
    between = eyes.mean(0)
    spacing = float(np.linalg.norm(eyes[0] - eyes[1]))
    below = between - np.array([0.0, spacing, 0.0])

    def opening(target: np.ndarray) -> np.ndarray:
        loop = loops[int(np.argmin(np.linalg.norm(centres - target, axis=1)))]
        order = np.argsort(points[loop, 0])
        return loop[order[[0, -1]]]  # most -x (right) then most +x (left)

    right_eye, left_eye, mouth = opening(eyes[1]), opening(eyes[0]), opening(below)
    used = np.unique(surface.triangles)
    midline = used[np.abs(points[used, 0]) < 0.05 * spacing]
    face = midline[(points[midline, 1] < between[1]) & (points[midline, 1] > below[1])]
    crown = midline[points[midline, 1] > between[1]]
    return np.array([*right_eye, *left_eye, *mouth,
                     face[np.argmax(points[face, 2])], used[np.argmax(points[used, 1])],
                     crown[np.argmin(points[crown, 2])]])


def closest_points(points: np.ndarray, surface: Surface, neighbours: int = 4,
                   chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For points (N, 3), the closest point on the surface: triangle (N,), barycentrics
    (N, 3) and distance (N,). Candidates are the triangles around the `neighbours` nearest
    vertices (measured against 8 on the atlas bake: 0.04% of texels differ, by under
    0.4 mm, at half the time); `chunk` points at a time bound the memory."""
    vertices, triangles = surface.vertices, surface.triangles
    used = np.unique(triangles)  # vertices on no triangle (ICT's eyes, teeth) are no match
    _, nearest = cKDTree(vertices[used]).query(points, neighbours)
    nearest = used[nearest]
    # vertex -> incident triangles, padded with -1
    corner_vertex = triangles.reshape(-1)
    order = np.argsort(corner_vertex, kind="stable")
    degree = np.bincount(corner_vertex, minlength=len(vertices))
    first = np.concatenate([[0], np.cumsum(degree)[:-1]])
    slot = np.arange(len(order)) - np.repeat(first, degree)
    incident = np.full((len(vertices), int(degree.max())), -1)
    incident[corner_vertex[order], slot] = order // 3
    triangle = np.zeros(len(points), np.int64)
    barycentric = np.zeros((len(points), 3))
    distance = np.zeros(len(points))
    for start in range(0, len(points), chunk):
        part = slice(start, start + chunk)
        candidates = incident[nearest[part]].reshape(len(points[part]), -1)  # (n, C)
        valid = candidates >= 0
        corners = vertices[triangles[np.where(valid, candidates, 0)]]  # (n, C, 3, 3)
        best, barycentric[part], distance[part] = closest_among(points[part], corners, valid)
        triangle[part] = candidates[np.arange(len(best)), best]
    return triangle, barycentric, distance


def _normals(surface: Surface) -> np.ndarray:
    """(V, 3) area-weighted unit vertex normals."""
    v, f = surface.vertices, surface.triangles
    face = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, f[:, k], face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _laplacian(triangles: np.ndarray, size: int) -> sparse.csr_matrix:
    """(V, V) uniform graph Laplacian: each vertex minus the mean of its neighbours."""
    edges = triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    adjacency = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])),
                                  shape=(size, size)).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(float)
    degree = np.maximum(np.asarray(adjacency.sum(1)).ravel(), 1)
    return sparse.identity(size, format="csr") - sparse.diags(1 / degree) @ adjacency


@dataclass(frozen=True)
class Registration:
    """MakeHuman's head island moved onto ICT's neutral skin. head: the island with its
    registered vertices (V, 3) cm and UVs; landmarks: (9,) its registration points' vertex
    indices; ict_landmarks: (9, 3) the matching points on ICT."""

    head: Surface
    landmarks: np.ndarray
    ict_landmarks: np.ndarray


def register(makehuman: Surface, makehuman_eyes: np.ndarray, ict: Surface,
             ict_eyes: np.ndarray) -> Registration:
    """Similarity from the nine points, then non-rigid ICP: each round solves for the
    smoothest displacement (Laplacian-regularised least squares) that takes the vertices to
    their closest ICT points (where near and facing the same way) and the nine points
    onto ICT's."""
    source_marks = find_landmarks(makehuman, makehuman_eyes)
    target = ict.vertices[find_landmarks(ict, ict_eyes)]
    rest = fit_similarity(makehuman.vertices[source_marks], target).apply(makehuman.vertices)
    size = len(rest)
    laplacian = _laplacian(makehuman.triangles, size)
    smooth = (laplacian.T @ laplacian).tocsc()
    pin = sparse.coo_matrix((np.full(len(source_marks), _LANDMARK_WEIGHT),
                             (source_marks, source_marks)), shape=(size, size)).tocsc()
    pin_target = np.zeros_like(rest)
    pin_target[source_marks] = (target - rest[source_marks]) * _LANDMARK_WEIGHT
    ict_normals = _normals(ict)
    current = rest
    for stiffness in _NICP_STIFFNESS:
        for _ in range(_NICP_ROUNDS):
            triangle, barycentric, distance = closest_points(current, ict)
            matched = np.einsum("nk,nkd->nd", barycentric, ict.vertices[ict.triangles[triangle]])
            normal = np.einsum("nk,nkd->nd", barycentric,
                               ict_normals[ict.triangles[triangle]])
            facing = (normal * _normals(Surface(current, makehuman.triangles))).sum(1) > 0.5
            weight = ((distance < _MAX_MATCH_CM) & facing).astype(float)
            system = stiffness * smooth + sparse.diags(weight) + pin
            rhs = weight[:, None] * (matched - rest) + pin_target
            current = rest + splu(system.tocsc()).solve(rhs)
    return Registration(Surface(current, makehuman.triangles, makehuman.uvs), source_marks,
                        target)


@dataclass(frozen=True)
class Correspondence:
    """Where each atlas texel (T, 2T) looks in a MakeHuman map: uv (T, 2T, 2) (OBJ
    convention), and how far that is to be trusted: confidence (T, 2T) in [0, 1], 0 outside
    the skin's UV layout."""

    uv: np.ndarray
    confidence: np.ndarray


def _ramp(value: np.ndarray, low: float, high: float) -> np.ndarray:
    """1 at or below `low`, 0 at or above `high`, linear between."""
    return np.clip((high - value) / (high - low), 0.0, 1.0)


def vertex_trust(model: FaceModel) -> np.ndarray:
    """(V,) how far a MakeHuman colour is trusted at each ICT vertex, before the distance
    between the surfaces is counted (see FACE_CONFIDENCE)."""
    points = model.neutral.detach().cpu().numpy()
    face = np.arange(NARROW_FACE_VERTICES)
    rim = np.setdiff1d(model.region_vertices("skin").cpu().numpy(), face)
    inside, _ = cKDTree(points[rim]).query(points[face])
    features = points[model.landmark_vertices.cpu().numpy()[_FEATURE_LANDMARKS]]
    near_feature, _ = cKDTree(features).query(points[face])
    skin = FACE_CONFIDENCE + (1 - FACE_CONFIDENCE) * _ramp(inside, 0.0, _BLEND_CM)
    trust = np.ones(len(points))
    trust[face] = skin + (FEATURE_CONFIDENCE - skin) * _ramp(near_feature,
                                                            *_FEATURE_DISTANCE_CM)
    return trust


def correspondence(model: FaceModel, registration: Registration, height: int,
                   mirrored: bool = False) -> Correspondence:
    """The atlas texels' lookups into the MakeHuman maps; `mirrored` looks up the mirror
    image of each texel's point (x -> -x), a left-right flipped copy of the maps."""
    neutral = model.neutral.detach().cpu()
    points = atlas_positions(model, height, neutral).numpy().astype(float)
    covered = np.abs(points).sum(-1) > 0
    trust = torch.from_numpy(np.repeat(vertex_trust(model)[:, None], 3, 1)).float()
    region = atlas_positions(model, height, trust)[..., 0].numpy()
    query = points[covered] * (np.array([-1.0, 1.0, 1.0]) if mirrored else 1.0)
    triangle, barycentric, distance = closest_points(query, registration.head)
    assert registration.head.uvs is not None
    uv = np.zeros((*covered.shape, 2))
    uv[covered] = np.einsum("nk,nkd->nd", barycentric, registration.head.uvs[triangle])
    confidence = np.zeros(covered.shape)
    confidence[covered] = region[covered] * _ramp(distance, *_TRUST_DISTANCE_CM)
    return Correspondence(uv, confidence)


def load_map(path: Path, head: Surface) -> torch.Tensor:
    """A MakeHuman map (3, S, S) in [0, 1], box-filtered to _TEXTURE_SIZE, with everything
    outside the head island replaced by the island's own colours spread outwards, so no
    lookup near the island's edge blends in the background or the strip."""
    image = Image.open(path).convert("RGB").resize((_TEXTURE_SIZE, _TEXTURE_SIZE),
                                                   Image.Resampling.BOX)
    texture = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
    assert head.uvs is not None
    size = (_TEXTURE_SIZE, _TEXTURE_SIZE)
    screen, triangles = uv_screen_vertices(torch.from_numpy(head.uvs).float(), size)
    island = rasterize(screen, triangles, size).mask[0]
    # the island's outermost texel ring mixes in the background when box-filtered
    inner = -torch.nn.functional.max_pool2d(-island[None, None].float(), 3, 1, 1)[0, 0] > 0
    return push_pull_fill(texture, inner)


def bake(texture: torch.Tensor, lookup: Correspondence, gain: np.ndarray,
         expressions: int) -> Sample:
    """A training sample from a map (3, S, S): albedo (3, T, 2T) = gain (3,) x the map at
    each texel's lookup, the lookup's confidence, a neutral expression (E,)."""
    uv = torch.from_numpy(lookup.uv).float()[None]
    albedo = sample_texture(texture[None], uv)[0].permute(2, 0, 1).numpy()
    albedo = np.clip(albedo * gain[:, None, None], 0, 1) * (lookup.confidence > 0)
    return Sample(albedo.astype(np.float32), lookup.confidence.astype(np.float32),
                  np.zeros(expressions, np.float32))


def exposure_gain(makehuman: dict[str, Sample], portraits: list[Sample]) -> np.ndarray:
    """(3,) per-channel gain taking the light-skinned maps' mean face colour to the
    portraits', over the texels both trust (MakeHuman's maps are brighter than the de-lit
    photos; one gain for all keeps the maps' own skin tones apart)."""
    light = [s for name, s in makehuman.items() if _LIGHT_SKIN_TAG in name]
    photo_weight = np.mean([s.confidence for s in portraits], 0)
    photo_mean = (np.mean([s.albedo * s.confidence for s in portraits], 0)
                  / np.maximum(photo_weight, 1e-6))
    map_weight = np.mean([s.confidence for s in light], 0)
    map_mean = np.mean([s.albedo for s in light], 0)
    both = photo_weight * map_weight
    return (photo_mean * both).sum((1, 2)) / np.maximum((map_mean * both).sum((1, 2)), 1e-6)


def map_paths(skins: Path) -> list[Path]:
    """The skin maps of a makehuman-skins folder, sorted."""
    return sorted((skins / "textures").glob("*_diffuse*.png"))


def sample_name(map_path: Path, mirrored: bool) -> str:
    """The data folder's file for a map's sample: makehuman-<stem>[-mirrored].npz."""
    return f"{SAMPLE_PREFIX}{map_path.stem}{'-mirrored' if mirrored else ''}.npz"


def write_samples(skins: Path, data: Path, model: FaceModel, height: int,
                  log: Callable[[str], None] = print) -> dict:
    """Bake every map of `skins` and its mirror image into `data` as training samples
    (resuming: files already there are kept); returns their provenance for the model.

    The mirror images double the full-head data: with about 160 portraits, 14 samples alone
    would fall under the texture model's minimum support (linear.MIN_SUPPORT) on the
    texels only they see. The exposure gain is matched to the photo samples in `data`.
    """
    maps = map_paths(skins)
    todo = [(p, m) for p in maps for m in (False, True) if not (data / sample_name(p, m)).exists()]
    info = {"source": SOURCE, "licence": LICENCE, "maps": len(maps), "samples": 2 * len(maps)}
    if not todo:
        return info
    start = time.perf_counter()
    head, eyes = read_makehuman_head(skins / "base.obj")
    ict, ict_eyes = ict_skin(model)
    registration = register(head, eyes, ict, ict_eyes)
    lookups = {m: correspondence(model, registration, height, m) for m in (False, True)}
    textures = {p: load_map(p, head) for p in maps}
    expressions = model.num_expressions
    unscaled = {p.name: bake(t, lookups[False], np.ones(3), expressions)
                for p, t in textures.items()}
    portraits = [load_sample(p) for p in sample_paths(data)
                 if not p.name.startswith(SAMPLE_PREFIX)]
    gain = exposure_gain(unscaled, portraits) if portraits else np.ones(3)
    for path, mirrored in todo:
        save_sample(data / sample_name(path, mirrored),
                    bake(textures[path], lookups[mirrored], gain, expressions))
    error = np.linalg.norm(registration.head.vertices[registration.landmarks]
                           - registration.ict_landmarks, axis=1).max()
    log(f"texture-pca: {len(todo)} MakeHuman skin samples baked in "
        f"{time.perf_counter() - start:.0f} s (landmarks within {10 * error:.1f} mm, "
        f"exposure gain {[round(float(g), 3) for g in gain]})")
    return info
