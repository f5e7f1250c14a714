"""Cycles (CPU) renders of ICT-FaceKit faces with known shape, pose and focal length.

The ground truth for benchmarks/shape_benchmark.py, rendered by Blender rather than by the
engine's own rasteriser so that the fit is judged on images it did not make. Run as its own
process (bpy and the engine's torch/MediaPipe stay apart):

    .venv/bin/python benchmarks/cycles_faces.py SPECS.json

SPECS.json is a list of render specs written by shape_benchmark.py: {"image": path,
"vertices": path of a (V, 3) float32 .npy in cm, "yaw", "pitch", "roll" (degrees),
"focal_mm" (36 mm wide sensor), "face_fraction", "shift" [x, y] (fractions of the image),
"skin" [r, g, b] sRGB, "iris" [r, g, b], "key" [x, y, z], "background" [r, g, b],
"samples", "size"}. Each image is written with a sidecar IMAGE.json holding its render
seconds. Skin: per-vertex albedo in ICT's topology (base tone, redder cheeks and lips,
brows), Cycles noise for pores (colour and bump); eyes with iris and pupil; soft key and
fill area lights plus a dim environment.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = Path(os.environ.get("GANFIT_HOME", Path.home() / ".cache" / "ganfit")) / \
    "ict-facekit" / "model.npz"
# ICT-FaceKit parts (vertex / polygon ranges, end exclusive; engine/facemodel/regions.py)
SKIN_VERTICES = (0, 11248)
MOUTH_SOCKET = (11248, 13294)
EYE_SOCKETS = (13294, 14062)
GUMS = (14062, 17039)
TEETH = (17039, 21451)
RENDERED_POLYGONS = (0, 24692)  # skin .. eyeballs; lacrimal fluid, occlusion, lashes skipped
IRIS_MATERIALS = (5, 7)  # the inner eyeballs (iris and sclera colour)
CORNEA_MATERIALS = (4, 6)  # the outer eyeball shells, transparent in a real eye: skipped
SENSOR_MM = 36.0


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _polyline_distance(points: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of (P, 2) points to a (L, 2) polyline and the fraction along it (0..1)."""
    best = np.full(len(points), np.inf)
    along = np.zeros(len(points))
    lengths = np.linalg.norm(np.diff(line, axis=0), axis=1)
    total = lengths.sum()
    start = 0.0
    for a, b, length in zip(line[:-1], line[1:], lengths, strict=True):
        t = np.clip(((points - a) @ (b - a)) / max(length**2, 1e-9), 0, 1)
        d = np.linalg.norm(points - (a + t[:, None] * (b - a)), axis=1)
        closer = d < best
        best[closer] = d[closer]
        along[closer] = (start + t[closer] * length) / total
        start += length
    return best, along


def _inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(P,) bool: even-odd rule for (P, 2) points in a closed (L, 2) polygon."""
    inside = np.zeros(len(points), dtype=bool)
    x, y = points[:, 0], points[:, 1]
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        crosses = (a[1] > y) != (b[1] > y)
        xc = a[0] + (y - a[1]) * (b[0] - a[0]) / np.where(b[1] == a[1], 1e-9, b[1] - a[1])
        inside ^= crosses & (x < xc)
    return inside


def vertex_albedo(model: dict, spec: dict) -> np.ndarray:
    """(V, 3) linear albedo per vertex, painted on the neutral mesh (so it moves with it)."""
    neutral = model["neutral"].astype(np.float64)
    lm = neutral[model["landmark_vertices"]]
    v = len(neutral)
    skin = srgb_to_linear(spec["skin"])
    colour = np.tile(skin, (v, 1))
    idx = np.arange(*SKIN_VERTICES)
    p = neutral[idx]
    front = _smoothstep(4.0, 7.0, p[:, 2])  # the front of the face (cm, +Z forward)
    # cheeks: a little redder
    for side in (-1, 1):
        c = np.array([side * 4.2, -0.5])
        w = np.exp(-np.sum((p[:, :2] - c) ** 2, axis=1) / (2 * 1.6**2)) * front
        colour[idx] = colour[idx] * (1 - 0.25 * w[:, None]) + \
            0.25 * w[:, None] * skin * np.array([1.15, 0.75, 0.75])
    # lips: inside the outer lip contour, soft edge
    lip_poly = lm[48:60, :2]
    inside = _inside_polygon(p[:, :2], lip_poly) & (p[:, 2] > 8.0)
    edge, _ = _polyline_distance(p[:, :2], np.vstack([lip_poly, lip_poly[:1]]))
    lip_w = np.where(inside, 1.0, 0.0) * _smoothstep(0.0, 0.15, edge) + \
        np.where(inside, 0.0, 1.0) * (1 - _smoothstep(0.0, 0.1, edge)) * 0.5 * (p[:, 2] > 8.0)
    lip_colour = skin * np.array([0.85, 0.45, 0.48])
    colour[idx] = colour[idx] * (1 - lip_w[:, None]) + lip_w[:, None] * lip_colour
    # brows: a band under the brow landmarks' upper contour, thicker at the inner end
    hair = srgb_to_linear(spec.get("hair", [0.18, 0.12, 0.08]))
    for a, b, inner_first in ((17, 22, False), (22, 27, True)):
        line = lm[a:b, :2].copy()
        line[:, 1] -= 0.25
        d, along = _polyline_distance(p[:, :2], line)
        inner = along if inner_first else 1 - along
        thick = 0.55 - 0.3 * inner
        w = (1 - _smoothstep(0.5 * thick, thick, d)) * (p[:, 2] > 6.0) * 0.9
        colour[idx] = colour[idx] * (1 - w[:, None]) + w[:, None] * hair
    colour[slice(*MOUTH_SOCKET)] = srgb_to_linear([0.35, 0.08, 0.08])
    colour[slice(*EYE_SOCKETS)] = srgb_to_linear([0.45, 0.2, 0.2])
    colour[slice(*GUMS)] = srgb_to_linear([0.75, 0.35, 0.35])
    colour[slice(*TEETH)] = srgb_to_linear([0.9, 0.87, 0.78])
    iris_colour = srgb_to_linear(spec["iris"])
    for material in IRIS_MATERIALS:  # ICT's iris mesh is the whole inner eyeball
        ids = _material_vertices(model, material)
        ball = neutral[ids]
        rel = ball - ball.mean(0)
        radial = np.hypot(rel[:, 0], rel[:, 1]) * (rel[:, 2] > 0) + 9.0 * (rel[:, 2] <= 0)
        colour[ids] = srgb_to_linear([0.86, 0.83, 0.8])
        iris = (radial < 0.55)[:, None]
        ring = iris_colour * (0.5 + 0.9 * np.clip(radial / 0.55, 0, 1))[:, None]
        colour[ids] = np.where(iris, np.where((radial < 0.22)[:, None], 0.01, ring), colour[ids])
    return colour


def _material_vertices(model: dict, material: int) -> np.ndarray:
    sizes = model["polygon_sizes"]
    owner = np.repeat(model["polygon_materials"], sizes)
    return np.unique(model["polygon_vertices"][owner == material])


def _build_head(bpy, model: dict, vertices: np.ndarray, albedo: np.ndarray):
    """The posed mesh (metres), smooth shaded, one material with a per-vertex colour."""
    sizes = model["polygon_sizes"]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    lo, hi = RENDERED_POLYGONS
    keep = [p for p in range(lo, hi) if model["polygon_materials"][p] not in CORNEA_MATERIALS]
    polygons = [model["polygon_vertices"][starts[p]:starts[p] + sizes[p]].tolist() for p in keep]
    mesh = bpy.data.meshes.new("head")
    mesh.from_pydata((vertices * 0.01).tolist(), [], polygons)
    mesh.shade_smooth()
    attr = mesh.color_attributes.new("albedo", "FLOAT_COLOR", "POINT")
    rgba = np.concatenate([albedo, np.ones((len(albedo), 1))], axis=1).astype(np.float32)
    attr.data.foreach_set("color", rgba.ravel())
    mats = model["polygon_materials"][keep]
    skin_mat, eye_mat = _skin_material(bpy), _eye_material(bpy)
    mesh.materials.append(skin_mat)
    mesh.materials.append(eye_mat)
    mesh.polygons.foreach_set("material_index", np.isin(mats, IRIS_MATERIALS).astype(np.int32))
    obj = bpy.data.objects.new("head", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _skin_material(bpy):
    mat = bpy.data.materials.new("skin")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    colour = nt.nodes.new("ShaderNodeVertexColor")
    colour.layer_name = "albedo"
    coord = nt.nodes.new("ShaderNodeTexCoord")
    pores = nt.nodes.new("ShaderNodeTexNoise")
    pores.inputs["Scale"].default_value = 900.0  # object space, metres: ~1 mm features
    pores.inputs["Detail"].default_value = 4.0
    blotch = nt.nodes.new("ShaderNodeTexNoise")
    blotch.inputs["Scale"].default_value = 60.0
    nt.links.new(coord.outputs["Object"], pores.inputs["Vector"])
    nt.links.new(coord.outputs["Object"], blotch.inputs["Vector"])
    ramp = nt.nodes.new("ShaderNodeMapRange")
    ramp.inputs["To Min"].default_value = 0.88
    ramp.inputs["To Max"].default_value = 1.08
    nt.links.new(blotch.outputs["Fac"], ramp.inputs["Value"])
    mix = nt.nodes.new("ShaderNodeVectorMath")
    mix.operation = "MULTIPLY"
    nt.links.new(colour.outputs["Color"], mix.inputs[0])
    nt.links.new(ramp.outputs["Result"], mix.inputs[1])
    nt.links.new(mix.outputs["Vector"], bsdf.inputs["Base Color"])
    bump = nt.nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = 0.15
    bump.inputs["Distance"].default_value = 0.0005
    nt.links.new(pores.outputs["Fac"], bump.inputs["Height"])
    nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    bsdf.inputs["Roughness"].default_value = 0.5
    return mat


def _eye_material(bpy):
    mat = bpy.data.materials.new("eye")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    colour = nt.nodes.new("ShaderNodeVertexColor")
    colour.layer_name = "albedo"
    nt.links.new(colour.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.08
    return mat


def _area_light(bpy, name: str, location, energy: float, size: float) -> None:
    from mathutils import Vector

    light = bpy.data.lights.new(name, "AREA")
    light.energy, light.size = energy, size
    obj = bpy.data.objects.new(name, light)
    obj.location = location
    obj.rotation_euler = (Vector((0, 0, 0)) - Vector(location)).to_track_quat("-Z", "Y").to_euler()
    bpy.context.scene.collection.objects.link(obj)


def head_rotation(spec: dict) -> np.ndarray:
    """(3, 3) the head's rotation as Blender applies rotation_mode "YXZ" (verified against
    bpy's matrix_basis): Rz(roll) @ Rx(pitch) @ Ry(yaw)."""
    def axis(angle: float, i: int, j: int) -> np.ndarray:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        out = np.eye(3)
        out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
        return out

    return axis(spec["roll"], 0, 1) @ axis(spec["pitch"], 1, 2) @ axis(spec["yaw"], 2, 0)


def camera_setup(spec: dict) -> tuple[float, float, np.ndarray]:
    """(focal px, distance m, camera location (3,) m) of a spec's render."""
    size = spec["size"]
    focal_px = spec["focal_mm"] / SENSOR_MM * size
    face_width = 0.17  # metres, cheek to cheek (ICT's face region is ~18 cm wide)
    distance = focal_px * face_width / (spec["face_fraction"] * size)
    sx, sy = spec["shift"]
    location = np.array([sx * distance * size / focal_px, sy * distance * size / focal_px,
                         distance])
    return focal_px, distance, location


def true_projection(spec: dict, vertices: np.ndarray) -> np.ndarray:
    """(V, 3): pixel u, v (origin at the image's top-left corner) and depth (m) of the
    render's (V, 3) cm vertices, as Cycles sees them (camera looking down -Z, +Y up)."""
    focal_px, _, location = camera_setup(spec)
    world = (vertices - vertices[:9409].mean(0)) * 0.01 @ head_rotation(spec).T
    camera = world - location
    depth = -camera[:, 2]
    half = spec["size"] / 2.0
    return np.stack([half + focal_px * camera[:, 0] / depth,
                     half - focal_px * camera[:, 1] / depth, depth], 1)


def render(bpy, model: dict, spec: dict) -> float:
    """Render one spec to spec["image"]; returns the render seconds."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    vertices = np.load(spec["vertices"]).astype(np.float64)
    centre = vertices[:9409].mean(0)
    head = _build_head(bpy, model, vertices - centre, vertex_albedo(model, spec))
    head.rotation_mode = "YXZ"  # yaw (Y) applied first, roll (Z) last: head_rotation
    head.rotation_euler = [math.radians(spec["pitch"]), math.radians(spec["yaw"]),
                           math.radians(spec["roll"])]
    size = spec["size"]
    _, distance, location = camera_setup(spec)
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    cam.data.lens, cam.data.sensor_width, cam.data.sensor_fit = spec["focal_mm"], SENSOR_MM, \
        "HORIZONTAL"
    cam.location = location.tolist()
    scene.collection.objects.link(cam)
    scene.camera = cam
    key = np.array(spec["key"], dtype=np.float64)
    _area_light(bpy, "key", (key * distance).tolist(), 9.0 * distance**2, 0.6 * distance)
    fill = np.array([-key[0], -0.2, 1.0])
    _area_light(bpy, "fill", (fill * distance).tolist(), 3.0 * distance**2, 0.8 * distance)
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    bg = world.node_tree.nodes["Background"]
    bg.inputs["Color"].default_value = (*srgb_to_linear(spec["background"]).tolist(), 1.0)
    bg.inputs["Strength"].default_value = 0.6
    scene.world = world
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = spec["samples"]
    scene.cycles.use_denoising = True
    scene.cycles.max_bounces = 3
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.view_settings.view_transform = "Standard"
    scene.render.filepath = str(Path(spec["image"]).resolve())
    start = time.perf_counter()
    bpy.ops.render.render(write_still=True)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    specs = json.loads(Path(argv[0]).read_text())
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="ganfit-blender-user-")
    import bpy

    with np.load(MODEL) as data:
        model = {k: data[k] for k in data.files}
    for spec in specs:
        seconds = render(bpy, model, spec)
        Path(spec["image"] + ".json").write_text(json.dumps({"render_seconds": seconds}))
        print(f"{spec['image']}: {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
