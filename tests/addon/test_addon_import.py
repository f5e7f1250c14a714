"""Building the head from a result folder with the installed add-on's import operator."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.blender


def _raw(result_dir: Path) -> tuple[dict, dict]:
    mesh = dict(np.load(result_dir / "mesh.npz"))
    meta = json.loads((result_dir / "result.json").read_text())
    return mesh, meta


def _weights(meta: dict, names) -> np.ndarray:
    weights = meta["views"][0]["expression_weights"]
    return np.array([weights[n] for n in names] if isinstance(weights, dict) else weights)


def _blender(points_cm: np.ndarray) -> np.ndarray:
    """DESIGN.md model axes (cm, Y up, face +Z) -> Blender (m, Z up, face -Y)."""
    x, y, z = points_cm[..., 0], points_cm[..., 1], points_cm[..., 2]
    return np.stack([x, -z, y], axis=-1) * 0.01


def _get(collection, attr: str, dtype, width: int = 1) -> np.ndarray:
    out = np.empty(len(collection) * width, dtype=dtype)
    collection.foreach_get(attr, out)
    return out.reshape(-1, width) if width > 1 else out


def _import(bpy, result_dir: Path, **options):
    return bpy.ops.ganfit.import_result(filepath=str(result_dir / "result.json"), **options)


def test_import_builds_mesh_uvs_shape_keys_and_material(scene, result_dir, bpy_module):
    _check_import(bpy_module, result_dir)


@pytest.mark.slow
def test_import_of_a_real_reconstruction(scene, astronaut_result, bpy_module):
    """The same checks on what the real engine wrote for the astronaut photo."""
    _check_import(bpy_module, astronaut_result)


def _check_import(bpy, result_dir: Path) -> None:
    mesh_npz, meta = _raw(result_dir)
    assert _import(bpy, result_dir) == {"FINISHED"}
    head = bpy.context.active_object
    assert head.name == Path(meta["views"][0]["path"]).stem
    mesh = head.data
    assert len(mesh.vertices) == len(mesh_npz["vertices"])
    assert len(mesh.polygons) == len(mesh_npz["polygon_sizes"])
    assert len(mesh.loops) == len(mesh_npz["polygon_vertices"])
    np.testing.assert_array_equal(_get(mesh.polygons, "loop_total", np.int32),
                                  mesh_npz["polygon_sizes"])  # quads kept
    np.testing.assert_array_equal(_get(mesh.loops, "vertex_index", np.int32),
                                  mesh_npz["polygon_vertices"])
    np.testing.assert_array_equal(_get(mesh.polygons, "material_index", np.int32),
                                  mesh_npz["polygon_materials"])
    assert len(mesh.uv_layers) == 1 and len(mesh.uv_layers[0].data) == len(mesh.loops)
    np.testing.assert_allclose(_get(mesh.uv_layers[0].data, "uv", np.float32, 2),
                               mesh_npz["loop_uvs"], atol=1e-6)
    basis = _blender(mesh_npz["vertices"].astype(np.float64))
    keys = mesh.shape_keys.key_blocks
    np.testing.assert_allclose(_get(keys[0].data, "co", np.float32, 3), basis, atol=1e-6)
    names = [str(n) for n in mesh_npz["expression_names"]]
    assert [k.name for k in keys[1:]] == names
    np.testing.assert_allclose([k.value for k in keys[1:]], _weights(meta, names), atol=1e-6)
    for i in (0, len(names) // 2, len(names) - 1):
        offset = _get(keys[i + 1].data, "co", np.float32, 3) - basis
        np.testing.assert_allclose(offset, _blender(mesh_npz["expression_deltas"][i]),
                                   atol=1e-6)
    assert all(k.relative_key == keys[0] for k in keys[1:])


def test_materials_use_the_texture_on_the_skin(scene, result_dir, bpy_module):
    mesh_npz, _ = _raw(result_dir)
    _import(bpy_module, result_dir)
    materials = bpy_module.context.active_object.data.materials
    groups = [str(n) for n in mesh_npz["material_names"]]
    assert len(materials) == len(groups)
    for group, material in zip(groups, materials, strict=True):
        assert material.name.endswith(group)
        tree = material.node_tree
        bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
        images = [n.image for n in tree.nodes if n.type == "TEX_IMAGE"]
        if group in ("M_Face", "M_BackHead"):
            base = bsdf.inputs["Base Color"].links[0].from_node
            assert base.type == "TEX_IMAGE"
            assert Path(base.image.filepath).resolve() == (result_dir / "texture.png").resolve()
            assert base.image.size[0] > 0  # the PNG really loads
            # The result's maps: normal map -> Normal, roughness (G) -> Roughness, AO
            # into the glTF output group (what the glb exporter reads as occlusion).
            files = {Path(i.filepath).name: i for i in images}
            assert set(files) == {"texture.png", "normal.png", "roughness.png", "ao.png"}
            assert bsdf.inputs["Normal"].links[0].from_node.type == "NORMAL_MAP"
            assert bsdf.inputs["Roughness"].links[0].from_node.type == "SEPARATE_COLOR"
            assert files["normal.png"].colorspace_settings.name == "Non-Color"
            group_nodes = [n for n in tree.nodes if n.type == "GROUP"]
            assert [n.node_tree.name for n in group_nodes] == ["glTF Material Output"]
            assert group_nodes[0].inputs["Occlusion"].is_linked
        elif "Sclera" in group:  # generated, packed, its alpha cuts out the cornea
            assert len(images) == 1 and images[0].packed_file is not None
            assert bsdf.inputs["Alpha"].links[0].from_socket.name == "Alpha"
        elif group in ("M_IrisLeft", "M_IrisRight", "M_Teeth", "M_GumsTongue"):
            # the photo's iris colour; the generated teeth and gums colours
            name = {"M_Teeth": "teeth.png", "M_GumsTongue": "gums.png"}.get(group, "iris.png")
            assert [Path(i.filepath).name for i in images] == [name]
            assert bsdf.inputs["Base Color"].links[0].from_node.image == images[0]
        else:
            assert not images, group


def test_head_faces_minus_y_in_metres(scene, result_dir, bpy_module):
    mesh_npz, _ = _raw(result_dir)
    _import(bpy_module, result_dir)
    co = _get(bpy_module.context.active_object.data.vertices, "co", np.float32, 3)
    marks = co[mesh_npz["landmark_vertices"]]
    nose_tip, chin, jaw_ends, eye_corners = marks[30], marks[8], marks[[0, 16]], marks[[36, 45]]
    assert nose_tip[1] < jaw_ends[:, 1].min() - 0.03  # the nose points to -Y
    assert chin[2] < eye_corners[:, 2].min() - 0.05  # Z is up
    # The subject's right eye corner (36) is on the viewer's left seen from -Y: -X.
    assert eye_corners[0, 0] < 0 < eye_corners[1, 0]
    height = co[:, 2].max() - co[:, 2].min()
    assert 0.2 < height < 0.5  # a head in metres, not centimetres


def test_reference_photo_lines_up_with_the_fitted_camera(scene, result_dir, bpy_module):
    _, meta = _raw(result_dir)
    view = meta["views"][0]
    if not Path(view["path"]).is_file():
        pytest.skip("the photo of the result is not on this machine")
    _import(bpy_module, result_dir, reference_image=True)
    head = bpy_module.context.active_object
    (photo,) = head.children
    assert photo.empty_display_type == "IMAGE" and photo.data is not None
    width, height = view["size"]
    assert tuple(photo.data.size) == (width, height)
    # The image rectangle's corners in world space, back in model cm, projected with the
    # view's camera (DESIGN.md), must be the photo's corners.
    longest = max(width, height)
    matrix = np.array(photo.matrix_world)
    corners = []
    for sx, sy in ((0, 1), (1, 1), (0, 0), (1, 0)):  # image top-left, top-right, ...
        local = np.array([(sx - 0.5) * width / longest, (sy - 0.5) * height / longest, 0, 1])
        world = (matrix @ local)[:3] * 100
        corners.append([world[0], world[2], -world[1]])  # Blender -> model axes
    camera = view["camera"]
    cam = np.array(corners) @ np.array(camera["rotation"]).T + camera["translation"]
    pixels = cam[:, :2] / cam[:, 2:] * camera["focal"] + camera["principal_point"]
    expected = [[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5],
                [width - 0.5, height - 0.5]]
    np.testing.assert_allclose(pixels, expected, atol=1e-2)


def test_reimport_replaces_or_versions_never_duplicates(scene, result_dir, bpy_module):
    bpy = bpy_module
    _import(bpy, result_dir)
    counts = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials),
              len(bpy.data.images))
    name = bpy.context.active_object.name
    _import(bpy, result_dir)
    assert (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials),
            len(bpy.data.images)) == counts
    assert bpy.context.active_object.name == name
    assert all(m.name.startswith(name + "_") for m in bpy.data.materials)
    _import(bpy, result_dir, on_existing="VERSION")
    heads = sorted(o.name for o in bpy.data.objects if o.type == "MESH")
    assert heads == [name, f"{name}.v2"]
    assert len(bpy.data.meshes) == 2 and len(bpy.data.materials) == 2 * counts[2]


def test_damaged_result_is_reported_and_builds_nothing(scene, result_dir, bpy_module,
                                                       tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(result_dir, broken)
    mesh = dict(np.load(broken / "mesh.npz"))
    mesh["polygon_vertices"] = mesh["polygon_vertices"].copy()
    mesh["polygon_vertices"][5] = len(mesh["vertices"]) + 3
    np.savez(broken / "mesh.npz", **mesh)
    with pytest.raises(RuntimeError, match="polygon_vertices.*outside"):
        _import(bpy_module, broken)
    assert len(bpy_module.data.objects) == 0 and len(bpy_module.data.meshes) == 0


def test_failed_build_leaves_no_half_built_head(scene, result_dir, addon, bpy_module,
                                                monkeypatch):
    bpy = bpy_module
    _import(bpy, result_dir)
    before = {c: sorted(x.name for x in getattr(bpy.data, c))
              for c in ("objects", "meshes", "materials", "images")}

    def fail(*_args):
        raise ValueError("simulated failure while adding shape keys")

    monkeypatch.setattr(addon.bl_scene, "_shape_keys", fail)
    with pytest.raises(RuntimeError, match="simulated failure"):
        _import(bpy, result_dir)
    after = {c: sorted(x.name for x in getattr(bpy.data, c)) for c in before}
    assert after == before  # the old head is still there, nothing new is left behind


def test_neutral_and_fitted_expression_buttons(scene, result_dir, bpy_module):
    bpy = bpy_module
    mesh_npz, meta = _raw(result_dir)
    _import(bpy, result_dir)
    keys = bpy.context.active_object.data.shape_keys.key_blocks
    assert bpy.ops.ganfit.set_expression(mode="NEUTRAL") == {"FINISHED"}
    assert all(k.value == 0.0 for k in keys[1:])
    assert bpy.ops.ganfit.set_expression(mode="FITTED") == {"FINISHED"}
    names = [str(n) for n in mesh_npz["expression_names"]]
    np.testing.assert_allclose([k.value for k in keys[1:]], _weights(meta, names), atol=1e-6)
