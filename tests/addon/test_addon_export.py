"""Game exports: glb with morph targets (Khronos validator), FBX with blend shapes, ARKit
names, default weights."""

import contextlib
import io
import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.blender
ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "node_modules" / "gltf-validator"
COMPONENT = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32,
             5126: np.float32}
WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


class Glb:
    """A .glb read with numpy only (glTF 2.0 spec: 12-byte header, JSON chunk, BIN chunk)."""

    def __init__(self, path: Path):
        data = path.read_bytes()
        magic, version, length = struct.unpack_from("<4sII", data)
        assert (magic, version, length) == (b"glTF", 2, len(data))
        json_len, json_type = struct.unpack_from("<I4s", data, 12)
        assert json_type == b"JSON"
        self.json = json.loads(data[20:20 + json_len])
        bin_len, bin_type = struct.unpack_from("<I4s", data, 20 + json_len)
        assert bin_type == b"BIN\x00"
        self.bin = data[28 + json_len:28 + json_len + bin_len]

    def _view(self, index: int, offset: int, dtype, count: int) -> np.ndarray:
        view = self.json["bufferViews"][index]
        start = view.get("byteOffset", 0) + offset
        return np.frombuffer(self.bin, dtype=dtype, count=count, offset=start)

    def accessor(self, index: int) -> np.ndarray:
        """(count, width) values, sparse substitutions applied."""
        acc = self.json["accessors"][index]
        width, dtype = WIDTH[acc["type"]], COMPONENT[acc["componentType"]]
        if "bufferView" in acc:
            values = self._view(acc["bufferView"], acc.get("byteOffset", 0), dtype,
                                acc["count"] * width).reshape(-1, width).copy()
        else:
            values = np.zeros((acc["count"], width), dtype)
        sparse = acc.get("sparse")
        if sparse:
            idx = sparse["indices"]
            where = self._view(idx["bufferView"], idx.get("byteOffset", 0),
                               COMPONENT[idx["componentType"]], sparse["count"])
            val = sparse["values"]
            values[where] = self._view(val["bufferView"], val.get("byteOffset", 0), dtype,
                                       sparse["count"] * width).reshape(-1, width)
        return values

    @property
    def mesh(self) -> dict:
        (mesh,) = self.json["meshes"]
        return mesh

    def target_names(self) -> list[str]:
        return self.mesh["extras"]["targetNames"]

    def target_positions(self, name: str) -> np.ndarray:
        """(N, 3) POSITION offsets of one morph target over all primitives."""
        k = self.target_names().index(name)
        return np.concatenate([self.accessor(p["targets"][k]["POSITION"])
                               for p in self.mesh["primitives"]])


def _validate(path: Path) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run the Khronos glTF validator")
    if not (VALIDATOR / "package.json").is_file():
        pytest.skip("npm package gltf-validator is missing: run scripts/setup.sh (npm install)")
    script = ("const v = require(process.argv[1]); const fs = require('fs');"
              "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])),"
              " {maxIssues: 200}).then(r => console.log(JSON.stringify(r.issues)))"
              ".catch(e => { console.error(e); process.exit(2); });")
    run = subprocess.run([node, "-e", script, str(VALIDATOR), str(path)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@dataclass
class Exports:
    """One head exported once per module: model names (glb, FBX) and ARKit names with
    the current expression kept (glb); plus the head's state before and after."""

    head: object
    model_glb: Path
    arkit_glb: Path
    fbx: Path
    before: tuple
    after: tuple
    arkit_report: str


def _state(bpy, obj) -> tuple:
    keys = obj.data.shape_keys.key_blocks
    return (obj.name, [k.name for k in keys], [k.value for k in keys],
            sorted(o.name for o in bpy.data.objects), len(bpy.data.meshes),
            sorted(o.name for o in bpy.context.selected_objects),
            bpy.context.view_layer.objects.active.name)


@pytest.fixture(scope="module")
def exports(addon, bpy_module, result_dir, tmp_path_factory) -> Exports:
    bpy = bpy_module
    _clear(bpy)
    folder = tmp_path_factory.mktemp("exports")
    assert bpy.ops.ganfit.import_result(
        filepath=str(result_dir / "result.json"), reference_image=True) == {"FINISHED"}
    head = bpy.context.active_object
    # Sliders away from the fitted values, to see they do not leak into the export.
    for i, key in enumerate(head.data.shape_keys.key_blocks[1:]):
        key.value = 0.1 + 0.8 * ((i * 37) % 11) / 10
    before = _state(bpy, head)
    paths = folder / "model.glb", folder / "arkit.glb", folder / "head.fbx"
    assert bpy.ops.ganfit.export_glb(filepath=str(paths[0])) == {"FINISHED"}
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        assert bpy.ops.ganfit.export_glb(filepath=str(paths[1]), arkit_names=True,
                                         keep_expression=True) == {"FINISHED"}
    assert bpy.ops.ganfit.export_fbx(filepath=str(paths[2])) == {"FINISHED"}
    yield Exports(head, *paths, before, _state(bpy, head), report.getvalue())
    _clear(bpy)


def _clear(bpy) -> None:
    bpy.data.batch_remove([*bpy.data.objects, *bpy.data.meshes, *bpy.data.materials,
                           *bpy.data.images])


def test_export_leaves_the_head_untouched(exports):
    assert exports.after == exports.before


def test_glb_has_morph_targets_zero_defaults_texture_and_validates(exports, bpy_module):
    bpy, head = bpy_module, exports.head
    glb = Glb(exports.model_glb)
    names = [k.name for k in head.data.shape_keys.key_blocks[1:]]
    assert glb.target_names() == names
    assert glb.json["nodes"][0]["name"] == head.name
    assert len(glb.mesh["weights"]) == len(names) and not any(glb.mesh["weights"])
    for primitive in glb.mesh["primitives"]:
        assert len(primitive["targets"]) == len(names)
    face = next(m for m in glb.json["materials"] if m["name"].endswith("M_Face"))
    texture = glb.json["textures"][face["pbrMetallicRoughness"]["baseColorTexture"]["index"]]
    assert glb.json["images"][texture["source"]]["name"] == "texture"
    for image in glb.json["images"]:
        assert image["mimeType"] == "image/png" and "bufferView" in image  # embedded
    sclera = [m for m in glb.json["materials"] if "Sclera" in m["name"]]
    assert sclera and all(m["alphaMode"] == "BLEND" for m in sclera)  # see-through cornea
    issues = _validate(exports.model_glb)
    assert issues["numErrors"] == 0, issues["messages"][:5]

    count = len(bpy.data.objects)
    bpy.ops.import_scene.gltf(filepath=str(exports.model_glb))
    imported = [o for o in bpy.context.selected_objects if o.type == "MESH"]
    assert len(bpy.data.objects) == count + 1 and len(imported) == 1
    keys = imported[0].data.shape_keys.key_blocks
    assert [k.name for k in keys[1:]] == names
    assert all(k.value == 0.0 for k in keys[1:])


def test_arkit_names_merge_split_shapes_and_keep_the_expression(exports):
    model, arkit = Glb(exports.model_glb), Glb(exports.arkit_glb)
    names = arkit.target_names()
    assert "browInnerUp" in names and "cheekPuff" in names and "eyeBlinkLeft" in names
    assert "tongueOut" not in names and "browInnerUp_L" not in names
    assert len(names) == len(model.target_names()) - 2
    assert "ARKit names the model lacks: tongueOut" in exports.arkit_report
    assert _validate(exports.arkit_glb)["numErrors"] == 0
    # A merged target moves the mesh as both halves together; a renamed one as before.
    for merged, halves in (("browInnerUp", ("browInnerUp_L", "browInnerUp_R")),
                           ("cheekPuff", ("cheekPuff_L", "cheekPuff_R"))):
        expected = sum(model.target_positions(h) for h in halves)
        np.testing.assert_allclose(arkit.target_positions(merged), expected, atol=1e-6)
    np.testing.assert_allclose(arkit.target_positions("mouthSmileRight"),
                               model.target_positions("mouthSmile_R"), atol=1e-7)
    # Kept expression: the sliders' values; a merged weight is the mean of its halves.
    keys = exports.head.data.shape_keys.key_blocks
    weights = dict(zip(names, arkit.mesh["weights"], strict=True))
    expected = (keys["browInnerUp_L"].value + keys["browInnerUp_R"].value) / 2
    assert weights["browInnerUp"] == pytest.approx(expected, abs=1e-6)
    for model_name, arkit_name in (("jawOpen", "jawOpen"), ("eyeBlink_L", "eyeBlinkLeft"),
                                   ("PupilDilate_R", "PupilDilate_R")):
        assert weights[arkit_name] == pytest.approx(keys[model_name].value, abs=1e-6)


def test_fbx_reimports_with_shape_keys(exports, bpy_module):
    bpy, head = bpy_module, exports.head
    names = [k.name for k in head.data.shape_keys.key_blocks[1:]]
    assert exports.fbx.stat().st_size > 1_000_000
    bpy.ops.import_scene.fbx(filepath=str(exports.fbx))
    imported = [o for o in bpy.context.selected_objects if o.type == "MESH"]
    assert len(imported) == 1
    keys = imported[0].data.shape_keys.key_blocks
    assert [k.name for k in keys[1:]] == names
    assert all(k.value == 0.0 for k in keys[1:])
    assert len(imported[0].data.vertices) == len(head.data.vertices)

    # Same size in metres after the round trip (FBX stores centimetres).
    def extent(obj) -> np.ndarray:
        co = np.array([v.co for v in obj.data.shape_keys.key_blocks[0].data])
        return np.sort(np.ptp(co, axis=0) * np.array(obj.matrix_world.to_scale()))

    np.testing.assert_allclose(extent(imported[0]), extent(head), rtol=1e-4)


def test_export_without_a_head_is_refused(scene, bpy_module):
    assert not bpy_module.ops.ganfit.export_glb.poll()
    assert not bpy_module.ops.ganfit.export_fbx.poll()
