"""Export a head for game engines: glTF binary (.glb) with morph targets and the
embedded texture, or FBX with blend shapes.

The export runs on a temporary copy of the head that carries the head's name, so the
artist's object, its shape keys and slider values are never touched: on the copy the
keys are renamed and merged (ARKit naming) and their values set to 0, because both
exporters write the current values as the file's default morph weights.
"""

from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from .expressions import MorphPlan, arkit_plan, model_plan

FORMATS = ("GLB", "FBX")


@dataclass(frozen=True)
class ExportSummary:
    """What was written: the file, morph target names in order, ARKit names the model
    lacks (ARKit naming only) and model expressions kept under their own names."""

    path: Path
    targets: tuple[str, ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]


def _coords(key: bpy.types.ShapeKey) -> np.ndarray:
    co = np.empty(len(key.data) * 3, dtype=np.float32)
    key.data.foreach_get("co", co)
    return co


def _apply_plan(obj: bpy.types.Object, plan: MorphPlan, keep_values: bool) -> None:
    """Rebuild obj's expression keys as the plan's targets, in the plan's order.

    A target with several sources gets basis + the sum of their offsets, and (when the
    current expression is kept) the mean of their values.
    """
    blocks = obj.data.shape_keys.key_blocks
    basis = _coords(blocks[0])
    sources = {k.name: (_coords(k) - basis, k.value) for k in blocks[1:]}
    for key in list(blocks[1:]):
        obj.shape_key_remove(key)
    for name, parts in plan.targets:
        key = obj.shape_key_add(name=name, from_mix=False)
        offset = np.sum([sources[p][0] for p in parts], axis=0)
        key.data.foreach_set("co", basis + offset)
        values = [sources[p][1] for p in parts]
        key.slider_min = min(0.0, *values)
        key.slider_max = max(1.0, *values)
        key.value = float(np.mean(values)) if keep_values else 0.0


def _write(fmt: str, path: Path) -> None:
    if fmt == "GLB":
        bpy.ops.export_scene.gltf(
            filepath=str(path), export_format="GLB", use_selection=True,
            export_apply=False, export_texcoords=True, export_normals=True,
            export_materials="EXPORT", export_image_format="AUTO",
            export_morph=True, export_morph_normal=True, export_animations=False,
            export_yup=True, export_extras=False)
    else:
        bpy.ops.export_scene.fbx(
            filepath=str(path), use_selection=True, object_types={"MESH"},
            use_mesh_modifiers=False, mesh_smooth_type="FACE", add_leaf_bones=False,
            bake_anim=False, path_mode="COPY", embed_textures=True,
            axis_forward="-Z", axis_up="Y")


def export_head(context: bpy.types.Context, head: bpy.types.Object, path: Path, fmt: str,
                arkit: bool = False, keep_expression: bool = False) -> ExportSummary:
    """Write the head to `path` as GLB or FBX; see the module docstring."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    keys = head.data.shape_keys
    names = [k.name for k in keys.key_blocks[1:]] if keys else []
    plan = arkit_plan(names) if arkit else model_plan(names)
    view_layer = context.view_layer
    view_layer.update()
    selected = [o for o in view_layer.objects if o.select_get()]
    active = view_layer.objects.active
    original_name = head.name
    copy = head.copy()
    copy.data = head.data.copy()
    copy.animation_data_clear()
    collection = context.scene.collection
    try:
        head.name = f"{original_name}.exporting"
        copy.name = original_name
        collection.objects.link(copy)
        if names:
            _apply_plan(copy, plan, keep_expression)
        for obj in selected:
            obj.select_set(False)
        copy.select_set(True)
        view_layer.objects.active = copy
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(fmt, path)
    finally:
        mesh = copy.data
        bpy.data.objects.remove(copy)
        bpy.data.meshes.remove(mesh)
        head.name = original_name
        for obj in selected:
            if obj.name in view_layer.objects:
                obj.select_set(True)
        view_layer.objects.active = active
    return ExportSummary(path, tuple(t for t, _ in plan.targets), plan.missing, plan.extra)
