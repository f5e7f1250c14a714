"""The add-on's plain-Python layer, without Blender: result folders, axes, the engine
protocol, ARKit names, slider groups, materials and the engine process."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from ganfit_blender import expressions, materials, process, protocol, result

PLAIN_MODULES = ("result", "protocol", "process", "expressions", "materials")


def test_plain_modules_import_without_bpy_or_torch():
    blocked = "; ".join(f"sys.modules[{m!r}] = None" for m in ("bpy", "mathutils", "torch"))
    imports = "; ".join(f"import ganfit_blender.{m}" for m in PLAIN_MODULES)
    run = subprocess.run([sys.executable, "-c", f"import sys; {blocked}; {imports}"],
                         cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


# ----------------------------------------------------------------------------- results

def _tiny_result(folder: Path, **changes) -> Path:
    """A valid result folder around a unit cube (cm): 8 vertices, 6 quads, 2
    expressions, one view; `changes` replaces mesh.npz arrays or result.json keys."""
    vertices = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)],
                        dtype=np.float32)
    quads = np.array([[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6],
                      [0, 2, 6, 4], [1, 5, 7, 3]])
    mesh = {
        "vertices": vertices,
        "polygon_sizes": np.full(6, 4, np.int32),
        "polygon_vertices": quads.ravel().astype(np.int32),
        "loop_uvs": np.tile([[0, 0], [1, 0], [1, 1], [0, 1]], (6, 1)).astype(np.float32),
        "polygon_materials": np.array([0, 0, 0, 1, 1, 1], np.int32),
        "material_names": np.array(["M_Face", "M_Teeth"]),
        "expression_names": np.array(["jawOpen", "eyeBlink_L"]),
        "expression_deltas": np.ones((2, 8, 3), np.float32) * [[[0.1]], [[0.2]]],
        "landmark_vertices": np.arange(68, dtype=np.int32) % 8,
    }
    meta = {
        "schema": "ganfit-result/1", "units": "cm", "up_axis": "Y",
        "expression_names": ["jawOpen", "eyeBlink_L"],
        "views": [{"path": "/photos/me.png", "size": [640, 480],
                   "expression_weights": {"jawOpen": 0.25, "eyeBlink_L": 0.5},
                   "camera": {"rotation": np.diag([1.0, -1.0, -1.0]).tolist(),
                              "translation": [0, 0, 50], "focal": [600, 600],
                              "principal_point": [319.5, 239.5]}}],
    }
    for key, value in changes.items():
        (mesh if key in mesh else meta)[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "mesh.npz", **mesh)
    (folder / "result.json").write_text(json.dumps(meta))
    return folder


def test_load_result_reads_every_array(tmp_path):
    loaded = result.load_result(_tiny_result(tmp_path / "r") / "result.json")
    assert loaded.vertices.shape == (8, 3) and loaded.polygon_sizes.tolist() == [4] * 6
    assert loaded.loop_starts.tolist() == [0, 4, 8, 12, 16, 20]
    assert loaded.material_names == ("M_Face", "M_Teeth")
    assert loaded.expression_names == ("jawOpen", "eyeBlink_L")
    np.testing.assert_allclose(loaded.fitted_weights(), [0.25, 0.5])
    assert loaded.views[0].size == (640, 480) and loaded.texture_path is None


def test_load_result_of_the_session_result_matches_its_files(result_dir):
    loaded = result.load_result(result_dir)
    raw = np.load(result_dir / "mesh.npz")
    meta = json.loads((result_dir / "result.json").read_text())
    np.testing.assert_array_equal(loaded.polygon_vertices, raw["polygon_vertices"])
    np.testing.assert_array_equal(loaded.expression_deltas, raw["expression_deltas"])
    weights = meta["views"][0]["expression_weights"]
    expected = [weights[n] for n in loaded.expression_names] if isinstance(weights, dict) \
        else weights
    np.testing.assert_allclose(loaded.fitted_weights(), expected, atol=1e-6)
    assert loaded.texture_path == result_dir / "texture.png"


@pytest.mark.parametrize("changes, message", [
    ({"polygon_vertices": np.arange(24, dtype=np.int32) % 9}, "outside"),
    ({"vertices": np.full((8, 3), np.nan, np.float32)}, "finite"),
    ({"expression_deltas": np.zeros((2, 7, 3), np.float32)}, "shape"),
    ({"polygon_sizes": np.array([4, 4, 4, 4, 4, 2], np.int32)}, "at least 3"),
    ({"loop_uvs": np.zeros((23, 2), np.float32)}, "shape"),
    ({"polygon_materials": np.array([0, 0, 0, 1, 1, 2], np.int32)}, "outside"),
    ({"schema": "ganfit-result/2"}, "schema"),
    ({"units": "mm"}, "units"),
    ({"expression_names": ["jawOpen", "mouthClose"]}, "differ"),
    ({"views": [{"expression_weights": {"jawOpen": 1.0}}]}, "lacks 'eyeBlink_L'"),
    ({"views": [{"expression_weights": [0.0, float("nan")]}]}, "finite"),
    ({"views": [{"expression_weights": [0, 0], "camera": {"rotation": np.eye(3).tolist()}}]},
     "camera is malformed"),
    ({"views": [{"expression_weights": [0, 0],
                 "camera": {"rotation": (2 * np.eye(3)).tolist(), "translation": [0, 0, 1],
                            "focal": [1, 1], "principal_point": [0, 0]}}]}, "not a rotation"),
])
def test_load_result_rejects_damaged_folders(tmp_path, changes, message):
    folder = _tiny_result(tmp_path / "r", **changes)
    with pytest.raises(result.ResultError, match=message):
        result.load_result(folder)


def test_load_result_names_missing_files(tmp_path):
    with pytest.raises(result.ResultError, match="not a result folder"):
        result.load_result(tmp_path)
    folder = _tiny_result(tmp_path / "r")
    (folder / "mesh.npz").unlink()
    with pytest.raises(result.ResultError, match="mesh.npz is missing"):
        result.load_result(folder)
    (folder / "result.json").write_text("{not json")
    with pytest.raises(result.ResultError, match="unreadable"):
        result.load_result(folder)


def test_model_axes_become_blender_axes_in_metres():
    axes = np.eye(3) * 100.0  # 1 m along model +X, +Y, +Z
    blender = result.to_blender_points(axes)
    np.testing.assert_allclose(blender, [[1, 0, 0], [0, 0, 1], [0, -1, 0]], atol=1e-7)
    assert np.linalg.det(result.MODEL_TO_BLENDER) == pytest.approx(1.0)  # no mirroring
    points = np.random.default_rng(0).normal(size=(10, 3)) * 20
    np.testing.assert_allclose(result.from_blender_points(result.to_blender_points(points)),
                               points, atol=1e-4)


def _random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_image_plane_covers_the_photo_from_the_camera():
    rng = np.random.default_rng(1)
    camera = result.Camera(_random_rotation(rng), np.array([1.0, -2.0, 70.0]),
                           np.array([900.0, 880.0]), np.array([300.2, 251.7]))
    width, height, depth = 640, 512, 85.0
    plane = result.image_plane(camera, (width, height), depth)
    corners = np.array([plane.center + sx * plane.width / 2 * plane.right
                        + sy * plane.height / 2 * plane.up
                        for sx, sy in ((-1, 1), (1, 1), (-1, -1), (1, -1))])
    cam = corners @ camera.rotation.T + camera.translation  # DESIGN.md: x = R X + t
    u = camera.focal[0] * cam[:, 0] / cam[:, 2] + camera.principal_point[0]
    v = camera.focal[1] * cam[:, 1] / cam[:, 2] + camera.principal_point[1]
    np.testing.assert_allclose(u, [-0.5, width - 0.5, -0.5, width - 0.5], atol=1e-6)
    np.testing.assert_allclose(v, [-0.5, -0.5, height - 0.5, height - 0.5], atol=1e-6)
    np.testing.assert_allclose(cam[:, 2], depth)


def test_slider_range_and_object_name():
    assert result.slider_range(0.3) == (0.0, 1.0)
    assert result.slider_range(1.4) == (0.0, 2.0) and result.slider_range(-0.2) == (-1.0, 1.0)
    assert result.object_name("/photos/astronaut.png") == "astronaut"
    assert len(result.object_name("é" * 100).encode()) <= 60


# ---------------------------------------------------------------------------- protocol

def test_reconstruct_command_is_the_documented_cli():
    argv = protocol.reconstruct_command("/py", ["a.png", "b.jpg"], "/out", "preview", "cpu")
    assert argv == ["/py", "-m", "engine", "reconstruct", "a.png", "b.jpg", "--out", "/out",
                    "--quality", "preview", "--device", "cpu", "--progress", "jsonl"]
    with pytest.raises(ValueError):
        protocol.reconstruct_command("/py", ["a.png"], "/out", "ultra", "cpu")
    with pytest.raises(ValueError):
        protocol.reconstruct_command("/py", [], "/out", "preview", "cpu")


def test_parse_event_reads_each_event_and_ignores_noise():
    assert protocol.parse_event('{"event": "stage", "name": "detect"}') == \
        protocol.StageEvent("detect")
    progress = protocol.parse_event('{"event": "progress", "stage": "full_fit", "step": 40, '
                                    '"steps": 300, "loss": {"total": 0.31}}')
    assert progress == protocol.ProgressEvent("full_fit", 40, 300, {"total": 0.31})
    assert protocol.parse_event('{"event": "done", "result": "D/result.json", "seconds": 2}') \
        == protocol.DoneEvent("D/result.json", 2.0)
    assert protocol.parse_event('{"event": "error", "code": "NO_FACE", "message": "none"}') \
        == protocol.ErrorEvent("NO_FACE", "none")
    for noise in ("", "hello", "{broken", '{"event": "progress", "stage": "x"}',
                  '{"event": "progress", "stage": "x", "step": true, "steps": 3}',
                  '{"event": "unknown"}', "[1, 2]"):
        assert protocol.parse_event(noise) is None


def test_progress_state_moves_forward_and_finishes_at_one():
    state = protocol.ProgressState()
    assert state.label == "Starting engine"
    fractions = []
    for stage, steps in (("detect", 0), ("landmark_fit", 50), ("full_fit", 300),
                         ("texture", 0), ("write", 0)):
        state.apply(protocol.StageEvent(stage))
        fractions.append(state.fraction)
        for step in range(0, steps + 1, max(steps // 4, 1)) if steps else ():
            state.apply(protocol.ProgressEvent(stage, step, steps))
            fractions.append(state.fraction)
    assert state.label == "Writing result"
    state.apply(protocol.DoneEvent("r", 1.0))
    fractions.append(state.fraction)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] == 0.0
    assert 0.0 < fractions[len(fractions) // 2] < 1.0
    state = protocol.ProgressState()
    state.apply(protocol.ProgressEvent("full_fit", 40, 300))
    assert state.label == "Fitting the face 40/300"


def test_failure_messages_explain_each_ending():
    no_face = protocol.ErrorEvent("NO_FACE", "no face found in me.png")
    assert protocol.failure_message(3, no_face) == "No face found in me.png"
    missing = protocol.ErrorEvent("MISSING_ASSET", "ICT-FaceKit is not installed")
    assert "Download models" in protocol.failure_message(4, missing)
    crash = protocol.failure_message(5, None, ["Traceback (most recent call last):",
                                               '  File "x.py"', "RuntimeError: boom", ""])
    assert "exit code 5" in crash and crash.endswith("RuntimeError: boom")
    assert "Traceback" not in crash
    assert "signal 9" in protocol.failure_message(-9, None)
    assert "No face" in protocol.failure_message(3, None)
    assert "without writing a result" in protocol.failure_message(0, None)
    assert "exit code 1" in protocol.failure_message(1, None, ["ImportError: no torch"])


# What the engine's stderr held when it crashed with DISPLAY set (issue 10): MediaPipe's
# and TensorFlow Lite's log lines, then faulthandler's report (engine/__main__.py).
CRASH_TAIL = [
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "W0000 00:00:1796145512.625285    9861 inference_feedback_manager.cc:114] Feedback "
    "manager requires a model with a single signature inference.",
    "identity network: dlib",
    "Fatal Python error: Segmentation fault",
    "",
    "Current thread 0x00007f3a (most recent call first):",
    '  File "<frozen importlib._bootstrap>", line 241 in _call_with_frames_removed',
    "W0000 00:00:1796145513.057798    9865 landmark_projection_calculator.cc:186] Using "
    "NORM_RECT without IMAGE_DIMENSIONS is only supported for the square ROI.",
]


def test_a_crash_shows_the_engines_own_words_not_a_library_log_line():
    message = protocol.failure_message(-11, None, CRASH_TAIL, "landmark_fit")
    assert message == ("The engine was stopped by signal 11 (SIGSEGV) while fitting "
                       "landmarks: Fatal Python error: Segmentation fault")
    # Without faulthandler's report: the engine's last own line, never a library's.
    tail = CRASH_TAIL[:4] + CRASH_TAIL[-1:]
    assert protocol.engine_line(tail) == "identity network: dlib"
    assert protocol.engine_line(CRASH_TAIL[:3]) == ""
    assert protocol.failure_message(-9, None, CRASH_TAIL[:3]) == (
        "The engine was stopped by signal 9 (SIGKILL)")
    assert "signal 77" in protocol.failure_message(-77, None)  # no name for it


def test_a_file_name_starting_a_message_keeps_its_case():
    assert protocol.sentence("no face found in Me.png") == "No face found in Me.png"
    assert protocol.sentence("photo.png: no face found") == "photo.png: no face found"
    assert protocol.sentence("IMG_0001.JPG is not an image") == "IMG_0001.JPG is not an image"
    assert protocol.sentence("cancelled") == "Cancelled"
    assert protocol.sentence("internal error: boom") == "Internal error: boom"
    assert protocol.sentence("") == ""
    event = protocol.ErrorEvent("BAD_IMAGE", "me.jpg: not an image")
    assert protocol.failure_message(2, event) == "me.jpg: not an image"


# --------------------------------------------------------------------- expressions, ARKit

def test_arkit_plan_on_the_model_names(result_dir):
    names = result.load_result(result_dir).expression_names
    plan = expressions.arkit_plan(names)
    targets = dict(plan.targets)
    assert len(expressions.ARKIT_52) == len(set(expressions.ARKIT_52)) == 52
    assert targets["browInnerUp"] == ("browInnerUp_L", "browInnerUp_R")
    assert targets["cheekPuff"] == ("cheekPuff_L", "cheekPuff_R")
    assert targets["eyeBlinkLeft"] == ("eyeBlink_L",)
    assert targets["mouthSmileRight"] == ("mouthSmile_R",)
    assert targets["jawOpen"] == ("jawOpen",)
    assert plan.missing == ("tongueOut",)
    assert set(plan.extra) == {"PupilDilate_L", "PupilDilate_R", "cheekRaiser_L",
                               "cheekRaiser_R"}
    used = [source for _, sources in plan.targets for source in sources]
    assert sorted(used) == sorted(names)  # every expression exported exactly once
    arkit_targets = [t for t, _ in plan.targets if t not in plan.extra]
    assert set(arkit_targets) == set(expressions.ARKIT_52) - {"tongueOut"}
    assert not any(t.endswith(("_L", "_R")) for t in arkit_targets)


def test_model_left_is_the_subjects_left_as_in_arkit(result_dir):
    loaded = result.load_result(result_dir)
    deltas = dict(zip(loaded.expression_names, loaded.expression_deltas, strict=True))
    for name in ("eyeBlink_L", "mouthSmile_L", "browDown_L"):
        moved = np.linalg.norm(deltas[name], axis=1) > 1e-3
        # The subject's right is at model -X (DESIGN.md), so the left side is at +X.
        assert loaded.vertices[moved, 0].mean() > 1.0, name


def test_groups_cover_every_name_once(result_dir):
    names = result.load_result(result_dir).expression_names
    groups = dict(expressions.grouped(names))
    assert list(groups) == ["Brows", "Eyes", "Cheeks", "Nose", "Jaw", "Mouth"]
    assert sorted(n for members in groups.values() for n in members) == sorted(names)
    assert "PupilDilate_L" in groups["Eyes"] and "cheekRaiser_L" in groups["Cheeks"]
    assert expressions.expression_group("tongueOut") == "Mouth"
    assert expressions.expression_group("headTurn") == expressions.OTHER_GROUP


def test_cornea_is_found_on_both_eyes(result_dir):
    loaded = result.load_result(result_dir)
    loops = result.group_loops(loaded, "M_ScleraLeft")
    group = loaded.material_names.index("M_ScleraLeft")
    assert len(loops) == loaded.polygon_sizes[loaded.polygon_materials == group].sum()
    assert len(set(loops.tolist())) == len(loops)
    left = result.cornea_uv_radius(loaded, "M_ScleraLeft")
    right = result.cornea_uv_radius(loaded, "M_ScleraRight")
    # An iris is about half the eyeball's width; the sclera UV map spans radius 0.5.
    assert 0.05 < left < 0.3 and right == pytest.approx(left, abs=0.01)
    # Inside the cornea the sclera bulges further from the eye's centre than at the limbus.
    points = loaded.vertices[loaded.polygon_vertices[loops]]
    centre = loaded.vertices[np.unique(loaded.polygon_vertices[loops])].mean(axis=0)
    uv_r = np.linalg.norm(loaded.loop_uvs[loops] - 0.5, axis=1)
    distance = np.linalg.norm(points - centre, axis=1)
    at_limbus = np.argsort(np.abs(uv_r - left))[:16]
    assert distance[uv_r < 0.5 * left].mean() > distance[at_limbus].mean()
    assert result.cornea_uv_radius(loaded, "M_NoSuchGroup") is None


def test_cornea_texture_is_clear_inside_and_opaque_outside():
    rgba = materials.cornea_texture((0.8, 0.78, 0.75), radius=0.15, size=64)
    assert rgba.shape == (64, 64, 4) and rgba.dtype == np.float32
    assert rgba[32, 32, 3] == 0.0 and rgba[0, 0, 3] == 1.0 and rgba[32, 2, 3] == 1.0
    # Just outside the cornea the sclera's own colour; towards the back darker and redder.
    np.testing.assert_allclose(rgba[32, 20, :3], materials.linear_to_srgb(np.array([0.8, 0.78,
                                                                                   0.75])))
    corner = rgba[0, 0, :3]
    assert np.all(corner < rgba[32, 20, :3]) and corner[0] - corner[2] > 0.05
    np.testing.assert_allclose(materials.linear_to_srgb(np.array([0.0, 0.0031308, 0.214, 1.0])),
                               [0.0, 0.04045, 0.5, 1.0], atol=1e-3)


def test_material_styles():
    assert materials.is_skin("M_Face") and materials.is_skin("M_BackHead")
    assert not materials.is_skin("M_Teeth") and not materials.is_skin("M_EyeLashes")
    assert materials.material_style("M_EyeOcclusion").alpha == 0.0
    assert materials.material_style("M_LacrimalFluid").alpha == 0.0
    assert materials.material_style("M_IrisLeft").alpha == 1.0


# ----------------------------------------------------------------------------- process

def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_engine_python_rule(tmp_path):
    checkout = tmp_path / "checkout"
    addon_dir = checkout / "ganfit_blender"
    addon_dir.mkdir(parents=True)
    pref = _executable(tmp_path / "pref" / "python")
    env = _executable(tmp_path / "env" / "python")
    with pytest.raises(process.EngineSetupError, match="preferences"):
        process.find_engine_python("", addon_dir, {})
    (checkout / "engine").mkdir()
    venv = _executable(checkout / ".venv" / "bin" / "python")
    found = process.find_engine_python("", addon_dir, {})
    assert (found.path, found.origin) == (venv, "source checkout")
    found = process.find_engine_python("", addon_dir, {process.ENV_PYTHON: str(env)})
    assert found.path == env
    found = process.find_engine_python(str(pref), addon_dir, {process.ENV_PYTHON: str(env)})
    assert (found.path, found.origin) == (pref, "add-on preferences")
    with pytest.raises(process.EngineSetupError, match="add-on preferences"):
        process.find_engine_python(str(tmp_path / "nope"), addon_dir, {})


def test_engine_source_prefers_the_bundled_copy(tmp_path):
    addon_dir = tmp_path / "ganfit_blender"
    with pytest.raises(process.EngineSetupError):
        process.find_engine_source(addon_dir)
    _executable(tmp_path / "engine" / "__main__.py")
    assert process.find_engine_source(addon_dir) == tmp_path
    _executable(addon_dir / "engine_src" / "engine" / "__main__.py")
    assert process.find_engine_source(addon_dir) == addon_dir / "engine_src"
    env = process.engine_environment(addon_dir / "engine_src", {"PYTHONPATH": "/x",
                                                                "PYTHONHOME": "/blender"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(addon_dir / "engine_src"), "/x"]
    assert "PYTHONHOME" not in env


def _child(code: str, tmp_path: Path) -> process.EngineProcess:
    return process.EngineProcess([sys.executable, "-c", textwrap.dedent(code)], tmp_path,
                                 dict(os.environ))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_engine_process_reads_without_blocking_and_stops_its_group(tmp_path):
    child = _child("""
        import subprocess, sys, time
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(sleeper.pid, flush=True)
        print("err line", file=sys.stderr, flush=True)
        time.sleep(60)
    """, tmp_path)
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while not lines and time.monotonic() < deadline:
        start = time.perf_counter()
        lines = child.read_lines()
        assert time.perf_counter() - start < 0.05  # never waits for output
        time.sleep(0.02)
    grandchild = int(lines[0])
    assert not child.finished and _alive(grandchild)
    start = time.monotonic()
    child.stop(grace_s=1.0)
    assert time.monotonic() - start < 2.5
    assert not _alive(child.pid) and not _alive(grandchild)
    assert child.finished and child.returncode is not None


def test_engine_process_keeps_every_line_and_drains_after_exit(tmp_path):
    child = _child("""
        import subprocess, sys
        for i in range(2000):
            print(i)
        # a child that keeps stdout open after the engine itself exits
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        sys.exit(3)
    """, tmp_path)
    assert child.wait(timeout_s=process.DRAIN_GRACE_S + 5)
    assert child.read_lines() == [str(i) for i in range(2000)]
    assert child.returncode == 3


def test_reconstruct_job_success_and_cleanup(tmp_path):
    engine = tmp_path / "py"
    engine.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""
        import json, os, sys
        out = sys.argv[sys.argv.index("--out") + 1]
        print(json.dumps({"event": "stage", "name": "detect"}), flush=True)
        os.makedirs(out)
        open(os.path.join(out, "result.json"), "w").write("{}")
        print(json.dumps({"event": "done", "result": out + "/result.json", "seconds": 1.5}))
    """))
    engine.chmod(0o755)
    job = process.ReconstructJob(engine, tmp_path)
    job.start([tmp_path / "photo.png"], "preview", "cpu")
    outcome = job.wait()
    assert outcome.result_dir == job.out_dir and outcome.message == "Reconstructed in 1.5 s"
    assert job.state.fraction == 1.0
    job.cleanup()
    assert not job.work_dir.exists()


def test_the_engines_notes_reach_the_artist(result_dir, tmp_path):
    assert result.notes_message(result.load_result(result_dir)) is None  # no notes: quiet
    meta = json.loads((result_dir / "result.json").read_text())
    notes = ["2 faces found; used the largest", "the face looks drawn, not photographed"]
    meta["views"][0]["notes"] = notes
    noted = tmp_path / "noted"
    noted.mkdir()
    for item in result_dir.iterdir():
        if item.name != "result.json":
            (noted / item.name).symlink_to(item)
    (noted / "result.json").write_text(json.dumps(meta))
    loaded = result.load_result(noted)
    assert loaded.views[0].notes == tuple(notes)
    assert result.notes_message(loaded) == "Note: " + "; ".join(notes)
