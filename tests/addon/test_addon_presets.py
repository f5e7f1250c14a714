"""Export presets, gltfpack discovery and the exact ARKit plan: plain Python, no bpy."""

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ganfit_blender import arkit, expressions, gltfpack, presets  # noqa: E402

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


def test_pack_reports_failures_and_missing_basisu(tmp_path):
    source = tmp_path / "in.glb"
    source.write_bytes(b"glTF")
    failing = _executable(tmp_path / "failing", "echo 'Error loading in.glb' >&2; exit 1")
    with pytest.raises(gltfpack.GltfpackError, match="gltfpack failed \\(1\\): Error loading"):
        gltfpack.pack(failing, source, tmp_path / "out.glb")
    # A gltfpack without BasisU: the KTX2 request is dropped with a note, not an error.
    log = tmp_path / "calls"
    no_basisu = _executable(tmp_path / "no_basisu", f"""echo "$@" >> {log}
case "$*" in *-tc*) echo 'Error: gltfpack was built without BasisU support'; exit 1;; esac
cp "$2" "$4" """)
    notes = gltfpack.pack(no_basisu, source, tmp_path / "out.glb", ktx2=True)
    assert notes and "KTX2" in notes[0]
    assert (tmp_path / "out.glb").read_bytes() == b"glTF"
    calls = log.read_text().splitlines()
    assert len(calls) == 2 and "-c" in calls[1].split() and "-tc" not in calls[1]


@pytest.mark.skipif(not (ROOT / "node_modules" / ".bin" / "gltfpack").is_file()
                    or os.system("command -v node >/dev/null") != 0,
                    reason="npm gltfpack not installed (scripts/setup.sh)")
def test_installed_gltfpack_is_found_in_the_checkout():
    assert gltfpack.find_gltfpack([ROOT], environ={"PATH": ""}) is not None
