"""Blender data from a checked result: the head object, its materials, shape keys and
the photo as a reference image.

Only bpy.data is used (no operators), so this works from a timer, a script or an
operator alike. A head is built completely under a temporary name before anything old
is removed, and whatever a failed build created is deleted again: the scene never keeps
a half-built head.
"""

from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from . import bl_compat
from .bl_maps import wire_maps
from .materials import cornea_texture, material_style
from .result import (
    CM_TO_M,
    FaceResult,
    View,
    cornea_uv_radius,
    image_plane,
    plane_depth,
    slider_range,
    to_blender_directions,
    to_blender_points,
)

PROP_SOURCE = "ganfit_source"  # on heads: which photo (or image) they were made from
PROP_FITTED = "ganfit_fitted"  # on heads: fitted weights, in shape-key order (no Basis)
PROP_OWNED = "ganfit_owned"  # on images, materials, empties the add-on created
UV_NAME = "UVMap"
BASIS = "Basis"
ON_EXISTING = (
    ("REPLACE", "Replace", "Replace the head made from the same photo"),
    ("VERSION", "New version", "Keep the old head and add a new one beside it"),
)


def reference_image_property():
    """The "Reference photo" option, shared by the panel's settings and the import operator."""
    return bpy.props.BoolProperty(
        name="Reference photo", default=True,
        description="Show the photo behind the head, lined up with the fitted camera")


def on_existing_property():
    """The "Existing head" option, shared by the panel's settings and the import operator."""
    return bpy.props.EnumProperty(
        name="Existing head", items=ON_EXISTING, default="REPLACE",
        description="What to do with a head made earlier from the same photo")


def is_head(obj: bpy.types.Object | None) -> bool:
    """Whether an object is a head this add-on built."""
    return obj is not None and obj.type == "MESH" and PROP_SOURCE in obj


def heads_from(source: str) -> list[bpy.types.Object]:
    return [o for o in bpy.data.objects if is_head(o) and o.get(PROP_SOURCE) == source]


def _owned(id_data: bpy.types.ID) -> bpy.types.ID:
    id_data[PROP_OWNED] = True
    return id_data


def _remove_if_unused(id_data: bpy.types.ID | None, collection) -> None:
    if id_data is not None and id_data.get(PROP_OWNED) and id_data.users == 0:
        collection.remove(id_data)


def remove_head(obj: bpy.types.Object) -> None:
    """Delete a head with its reference image, mesh, and the materials and images the
    add-on made for it that nothing else uses."""
    mesh = obj.data
    materials = _unique(m for m in mesh.materials if m is not None)
    images = [n.image for m in materials if m.node_tree
              for n in m.node_tree.nodes if n.type == "TEX_IMAGE" and n.image]
    for child in list(obj.children):
        if child.get(PROP_OWNED):
            if child.data is not None:
                images.append(child.data)
            bpy.data.objects.remove(child)
    bpy.data.objects.remove(obj)
    if mesh.users == 0:
        bpy.data.meshes.remove(mesh)
    for material in materials:
        _remove_if_unused(material, bpy.data.materials)
    for image in _unique(images):
        _remove_if_unused(image, bpy.data.images)


def _unique(ids) -> list:
    """Distinct datablocks, in order (removing one twice would touch freed memory)."""
    return list({id_data.as_pointer(): id_data for id_data in ids}.values())


def _fill_mesh(mesh: bpy.types.Mesh, result: FaceResult) -> None:
    """Polygons (quads kept), the UV map and smooth shading; vertices in Blender axes."""
    mesh.vertices.add(len(result.vertices))
    mesh.vertices.foreach_set("co", to_blender_points(result.vertices).ravel())
    mesh.loops.add(len(result.polygon_vertices))
    mesh.loops.foreach_set("vertex_index", result.polygon_vertices.astype(np.int32))
    mesh.polygons.add(len(result.polygon_sizes))
    mesh.polygons.foreach_set("loop_start", result.loop_starts.astype(np.int32))
    bl_compat.set_polygon_sizes(mesh, result.polygon_sizes.astype(np.int32))
    mesh.polygons.foreach_set("material_index", result.polygon_materials.astype(np.int32))
    uv_layer = mesh.uv_layers.new(name=UV_NAME)
    uv_layer.data.foreach_set("uv", result.loop_uvs.ravel())
    mesh.update()
    if mesh.validate(clean_customdata=False):
        raise ValueError(f"{result.folder.name}: the mesh has invalid polygons")
    bl_compat.shade_smooth(mesh)


def _style_material(material: bpy.types.Material, group: str,
                    texture: bpy.types.Image | None) -> None:
    """Principled BSDF inputs for one material group (see materials.py); `texture`
    feeds the base colour (and its alpha the alpha) of the groups that take one."""
    style = material_style(group)
    if material.node_tree is None:  # Blender < 5.0 starts without nodes
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = next((n for n in nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        bsdf = nodes.new("ShaderNodeBsdfPrincipled")
        output = next(n for n in nodes if n.type == "OUTPUT_MATERIAL")
        links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    bsdf.inputs["Base Color"].default_value = (*style.base_color, 1.0)
    bsdf.inputs["Roughness"].default_value = style.roughness
    bsdf.inputs["Alpha"].default_value = style.alpha
    material.diffuse_color = (*style.base_color, style.alpha)
    material.roughness = style.roughness
    if style.alpha < 1.0 or style.cornea:
        bl_compat.set_blended(material)
    if texture is not None and (style.textured or style.cornea or style.map_role):
        node = nodes.new("ShaderNodeTexImage")
        node.image = texture
        node.location = (bsdf.location.x - 350, bsdf.location.y)
        links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
        if style.cornea:
            links.new(node.outputs["Alpha"], bsdf.inputs["Alpha"])


def _cornea_image(result: FaceResult, group: str, name: str) -> bpy.types.Image | None:
    """The sclera's generated texture with the see-through cornea, packed; None when
    the cornea cannot be located."""
    radius = cornea_uv_radius(result, group)
    if radius is None:
        return None
    rgba = cornea_texture(material_style(group).base_color, radius)
    image = _owned(bpy.data.images.new(name, rgba.shape[1], rgba.shape[0], alpha=True))
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    return image


def _shape_keys(obj: bpy.types.Object, result: FaceResult, weights: np.ndarray) -> None:
    """Basis plus one key per expression with the model's name, set to `weights`."""
    basis = to_blender_points(result.vertices)
    obj.shape_key_add(name=BASIS, from_mix=False)
    rows = zip(result.expression_names, result.expression_deltas, weights, strict=True)
    for name, delta, weight in rows:
        key = obj.shape_key_add(name=name, from_mix=False)
        key.data.foreach_set("co", (basis + to_blender_points(delta)).ravel())
        key.slider_min, key.slider_max = slider_range(float(weight))
        key.value = float(weight)


def _load_image(path: Path, name: str) -> bpy.types.Image:
    image = _owned(bpy.data.images.load(str(path), check_existing=False))
    image.name = name
    return image


def _place_reference(empty: bpy.types.Object, result: FaceResult, view: View,
                     head: bpy.types.Object, photo: bpy.types.Image) -> None:
    """Make `empty` show the photo, as a child of the head, on a plane just behind the
    head where, seen from the view's fitted camera, it covers the photo exactly."""
    plane = image_plane(view.camera, view.size, plane_depth(result, view.camera))
    right, up = to_blender_directions(np.stack([plane.right, plane.up]))
    normal = np.cross(right, up)
    longest = max(view.size)
    scale_x = plane.width * CM_TO_M * longest / view.size[0]
    scale_y = plane.height * CM_TO_M * longest / view.size[1]
    center = to_blender_points(plane.center[None])[0]
    empty.empty_display_type = "IMAGE"
    empty.data = photo
    empty.empty_display_size = 1.0
    empty.empty_image_offset = (-0.5, -0.5)
    empty.use_empty_image_alpha = True
    empty.color[3] = 0.6
    empty.matrix_world = Matrix((
        (right[0] * scale_x, up[0] * scale_y, normal[0] * scale_x, center[0]),
        (right[1] * scale_x, up[1] * scale_y, normal[1] * scale_x, center[1]),
        (right[2] * scale_x, up[2] * scale_y, normal[2] * scale_x, center[2]),
        (0.0, 0.0, 0.0, 1.0),
    ))
    empty.parent = head
    empty.matrix_parent_inverse = head.matrix_world.inverted()
    empty.hide_select = True
    empty.hide_render = True


def _free_name(base: str) -> str:
    if base not in bpy.data.objects:
        return base
    n = 2
    while f"{base}.v{n}" in bpy.data.objects:
        n += 1
    return f"{base}.v{n}"


def build_head(result: FaceResult, name: str, source: str, collection: bpy.types.Collection,
               *, photo: bpy.types.Image | str | None = None, reference: bool = True,
               pack: bool = False, on_existing: str = "REPLACE") -> bpy.types.Object:
    """Build the head object from a result and link it into `collection`.

    name: the object's name (the photo's stem). source: what identifies the photo; heads
    from the same source are replaced (on_existing "REPLACE") or kept beside the new one
    ("VERSION", named NAME.v2, ...). photo: the image or path shown as the reference
    (default: views[0].path when that file exists). pack: pack the texture into the
    .blend (for results in a temporary folder).
    """
    building = f"{name}.building"
    created: list[tuple[bpy.types.ID, object]] = []
    try:
        head = _build(result, building, collection, photo, reference, pack, created)
    except BaseException:
        # Objects first, so that no mesh or image is still in use when it goes.
        created.sort(key=lambda item: not isinstance(item[0], bpy.types.Object))
        for id_data, id_collection in created:
            id_collection.remove(id_data)
        raise
    head[PROP_SOURCE] = source
    if on_existing == "REPLACE":
        for old in heads_from(source):
            if old != head:
                remove_head(old)
        final = name
    else:
        final = _free_name(name)
    for id_data, _ in created:
        id_data.name = id_data.name.replace(building, final, 1)
    return head


def _build(result: FaceResult, name: str, collection: bpy.types.Collection,
           photo: bpy.types.Image | str | None, reference: bool, pack: bool,
           created: list) -> bpy.types.Object:
    texture = None
    if result.texture_path is not None:
        texture = _load_image(result.texture_path, f"{name}_texture")
        created.append((texture, bpy.data.images))
        if pack:
            texture.pack()
    maps = {}
    for role, path in result.map_paths.items():
        maps[role] = _load_image(path, f"{name}_{role}")
        created.append((maps[role], bpy.data.images))
        if pack:
            maps[role].pack()
    mesh = bpy.data.meshes.new(name)
    created.append((mesh, bpy.data.meshes))
    _fill_mesh(mesh, result)
    for group in result.material_names:
        material = _owned(bpy.data.materials.new(f"{name}_{group}"))
        created.append((material, bpy.data.materials))
        style = material_style(group)
        image = maps.get(style.map_role) if style.map_role else texture
        if style.cornea:
            image = _cornea_image(result, group, f"{name}_{group}_cornea")
            if image is not None:
                created.append((image, bpy.data.images))
        _style_material(material, group, image)
        if style.textured:
            wire_maps(material, maps)
        mesh.materials.append(material)
    head = bpy.data.objects.new(name, mesh)
    created.append((head, bpy.data.objects))
    weights = result.fitted_weights()
    _shape_keys(head, result, weights)
    head[PROP_FITTED] = [float(w) for w in weights]
    collection.objects.link(head)
    view = result.views[0] if result.views else None
    if reference and view is not None and view.camera is not None and min(view.size) > 0:
        image = _reference_image(view, photo, name, created)
        if image is not None:
            empty = _owned(bpy.data.objects.new(f"{head.name}_photo", None))
            created.append((empty, bpy.data.objects))
            _place_reference(empty, result, view, head, image)
            collection.objects.link(empty)
    return head


def _reference_image(view: View, photo: bpy.types.Image | str | None, name: str,
                     created: list) -> bpy.types.Image | None:
    """The photo to show: the given Image, else the given path or the view's photo
    loaded from disk when the file exists."""
    if isinstance(photo, bpy.types.Image):
        return photo
    path = Path(photo or view.path or "")
    if not path.name or not path.is_file():
        return None
    image = _load_image(path, f"{name}_photo")
    created.append((image, bpy.data.images))
    return image


def select_only(view_layer: bpy.types.ViewLayer, obj: bpy.types.Object) -> None:
    """Make obj the only selected object and the active one in view_layer (so the
    panels that act on the active head show at once)."""
    view_layer.update()  # its object list is stale right after removals
    for other in view_layer.objects:
        other.select_set(False, view_layer=view_layer)
    obj.select_set(True, view_layer=view_layer)
    view_layer.objects.active = obj


def set_expression(obj: bpy.types.Object, fitted: bool) -> None:
    """All expression sliders to 0 (neutral) or back to the fitted weights."""
    keys = obj.data.shape_keys
    if keys is None:
        return
    weights = list(obj.get(PROP_FITTED, [])) if fitted else []
    for i, key in enumerate(keys.key_blocks[1:]):
        key.value = float(weights[i]) if i < len(weights) else 0.0
