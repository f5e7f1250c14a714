"""The engine process seen from Blender, with fake engines speaking the protocol: errors
become messages, crashes and Cancel leave no process, no temp folder, no half-built head,
and Blender stays usable."""

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.blender
read_log = pid_alive = None  # set from the engine_tools fixture (conftest helpers)


@pytest.fixture(autouse=True)
def _tools(engine_tools):
    global read_log, pid_alive
    read_log, pid_alive = engine_tools


def _choose_photo(bpy, photo: Path, *extra: Path):
    settings = bpy.context.scene.ganfit
    settings.photo_source = "FILE"
    settings.photo_path = str(photo)
    settings.quality, settings.device = "preview", "cpu"
    settings.extra_photos.clear()
    for path in extra:
        settings.extra_photos.add().path = str(path)
    return settings


def _assert_clean(bpy, addon, log: list[dict]) -> None:
    """No engine process, no temp folder, no head, no job; Blender still works."""
    assert addon.bl_jobs.current_job() is None
    for entry in log:
        for key in ("pid", "child"):
            if key in entry:
                assert not pid_alive(entry[key]), key
        if "out" in entry:
            assert not Path(entry["out"]).parent.exists()  # the job's temp folder
    assert not [o for o in bpy.data.objects if o.type == "MESH"]
    assert bpy.ops.mesh.primitive_cube_add() == {"FINISHED"}
    bpy.data.objects.remove(bpy.context.active_object)


def _tick_until(addon, done, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        addon.bl_jobs.tick()
        time.sleep(0.02)


def test_no_face_error_event_is_the_message(scene, addon, bpy_module, sample_photo,
                                            fake_engine):
    bpy = bpy_module
    log = fake_engine(
        "record(pid=os.getpid(), out=out, args=args)\n"
        "emit('stage', name='detect')\n"
        "emit('error', code='NO_FACE', message='no face found in astronaut.png')\n"
        "print('error: no face found in astronaut.png', file=sys.stderr)\n"
        "sys.exit(3)\n")
    _choose_photo(bpy, sample_photo)
    with pytest.raises(RuntimeError, match="No face found in astronaut.png"):
        bpy.ops.ganfit.reconstruct(wait=True)
    status = bpy.context.window_manager.ganfit_status
    assert (status.level, status.message) == ("ERROR", "No face found in astronaut.png")
    entries = read_log(log)
    args = entries[0]["args"]
    assert args[:2] == ["reconstruct", str(sample_photo.resolve())]
    assert args[2:] == ["--out", entries[0]["out"], "--quality", "preview", "--device", "cpu",
                        "--progress", "jsonl"]
    _assert_clean(bpy, addon, entries)


@pytest.mark.parametrize("ending, expected", [
    ("print('Traceback (most recent call last):', file=sys.stderr)\n"
     "print('RuntimeError: CUDA out of memory', file=sys.stderr)\n"
     "sys.stderr.flush()\nos._exit(5)\n",
     r"The engine failed \(exit code 5\): RuntimeError: CUDA out of memory$"),
    ("os.kill(os.getpid(), 9)\n", "stopped by signal 9"),
    # A native crash after libraries logged (the DISPLAY crash of issue 10): the message
    # is faulthandler's line, which the engine enables, never MediaPipe's log line.
    ("import ctypes, faulthandler\n"
     "faulthandler.enable(all_threads=False)\n"
     "print('W0000 00:00:1796145513.057798    9865 landmark_projection_calculator.cc:186]"
     " Using NORM_RECT without IMAGE_DIMENSIONS', file=sys.stderr, flush=True)\n"
     "ctypes.string_at(0)\n",
     r"The engine was stopped by signal 11 \(SIGSEGV\) while fitting landmarks: "
     r"Fatal Python error: Segmentation fault$"),
])
def test_crash_mid_run_is_reported(scene, addon, bpy_module, sample_photo, fake_engine,
                                   ending, expected):
    bpy = bpy_module
    log = fake_engine(
        "record(pid=os.getpid(), out=out)\n"
        "emit('stage', name='landmark_fit')\n"
        "emit('progress', stage='landmark_fit', step=10, steps=50, loss={'total': 1.0})\n"
        + ending)
    _choose_photo(bpy, sample_photo)
    with pytest.raises(RuntimeError, match=expected):
        bpy.ops.ganfit.reconstruct(wait=True)
    assert "Traceback" not in bpy.context.window_manager.ganfit_status.message
    _assert_clean(bpy, addon, read_log(log))


def test_cancel_stops_a_long_run_at_once(scene, addon, bpy_module, sample_photo, fake_engine):
    bpy = bpy_module
    log = fake_engine(
        "import subprocess\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "record(pid=os.getpid(), child=child.pid, out=out)\n"
        "emit('stage', name='full_fit')\n"
        "for step in range(1, 3001):\n"
        "    emit('progress', stage='full_fit', step=step, steps=3000, loss={'total': 1.0})\n"
        "    time.sleep(0.02)\n")
    _choose_photo(bpy, sample_photo)
    assert bpy.ops.ganfit.reconstruct() == {"FINISHED"}
    status = bpy.context.window_manager.ganfit_status
    job = addon.bl_jobs.current_job()
    assert job is not None and status.message == ""
    _tick_until(addon, lambda: job.state.step >= 5 and read_log(log))
    assert 0.2 < job.state.fraction < 0.8 and job.state.label.startswith("Fitting the face")
    assert not bpy.ops.ganfit.reconstruct.poll()  # one job at a time
    start = time.monotonic()
    assert bpy.ops.ganfit.cancel() == {"FINISHED"}
    assert time.monotonic() - start < 2.0
    assert (status.level, status.message) == ("INFO", "Cancelled")
    _assert_clean(bpy, addon, read_log(log))


def test_background_run_builds_the_head(scene, addon, bpy_module, sample_photo, fake_engine,
                                        result_dir, tmp_path):
    bpy = bpy_module
    second = tmp_path / "second.png"
    second.write_bytes(sample_photo.read_bytes())
    log = fake_engine(
        "import shutil\n"
        "record(pid=os.getpid(), out=out, args=args)\n"
        "for stage in ('detect', 'landmark_fit', 'full_fit', 'texture', 'write'):\n"
        "    emit('stage', name=stage)\n"
        f"shutil.copytree({str(result_dir)!r}, out)\n"
        "emit('done', result=os.path.join(out, 'result.json'), seconds=3.25)\n")
    _choose_photo(bpy, sample_photo, second)
    assert bpy.ops.ganfit.reconstruct() == {"FINISHED"}
    _tick_until(addon, lambda: addon.bl_jobs.current_job() is None)
    status = bpy.context.window_manager.ganfit_status
    assert (status.level, status.message) == ("INFO", "Reconstructed in 3.2 s: astronaut")
    (entry,) = read_log(log)
    assert entry["args"][1:3] == [str(sample_photo.resolve()), str(second.resolve())]
    head = bpy.data.objects["astronaut"]
    # The new head is active and the only selected object: its panels show at once.
    assert bpy.context.view_layer.objects.active == head
    assert [o.name for o in bpy.context.view_layer.objects if o.select_get()] == ["astronaut"]
    texture = next(n.image for n in head.data.materials[0].node_tree.nodes
                   if n.type == "TEX_IMAGE")
    assert texture.packed_file is not None  # the temp folder is gone, the texture stays
    assert not Path(entry["out"]).parent.exists() and not pid_alive(entry["pid"])
    assert len(head.data.shape_keys.key_blocks) > 1


def test_blender_image_is_sent_as_a_file(scene, addon, bpy_module, fake_engine):
    bpy = bpy_module
    image = bpy.data.images.new("Portrait.png", 48, 32)
    log = fake_engine(
        "photo = args[1]\n"
        "head = open(photo, 'rb').read(8) if os.path.isfile(photo) else b''\n"
        "record(pid=os.getpid(), out=out, photo=photo, png=head == b'\\x89PNG\\r\\n\\x1a\\n')\n"
        "emit('error', code='BAD_IMAGE', message='photo too small')\n"
        "sys.exit(2)\n")
    settings = bpy.context.scene.ganfit
    settings.photo_source, settings.photo_image = "IMAGE", image
    settings.extra_photos.clear()
    with pytest.raises(RuntimeError, match="Photo too small"):
        bpy.ops.ganfit.reconstruct(wait=True)
    (entry,) = read_log(log)
    assert entry["png"] and Path(entry["photo"]).parent == Path(entry["out"]).parent
    _assert_clean(bpy, addon, [entry])
    bpy.data.images.remove(image)


def test_setup_problems_are_reported_before_anything_runs(scene, addon, bpy_module,
                                                          addon_prefs, sample_photo,
                                                          tmp_path):
    bpy = bpy_module
    settings = _choose_photo(bpy, sample_photo)
    addon_prefs.engine_python = str(tmp_path / "no-such-python")
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.ganfit.reconstruct(wait=True)
    addon_prefs.engine_python = str(tmp_path)  # a folder is not an interpreter
    with pytest.raises(RuntimeError, match="not executable"):
        bpy.ops.ganfit.reconstruct(wait=True)
    (tmp_path / "python").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "python").chmod(0o755)
    addon_prefs.engine_python = str(tmp_path / "python")
    settings.photo_path = str(tmp_path / "missing.jpg")
    with pytest.raises(RuntimeError, match="Photo not found"):
        bpy.ops.ganfit.reconstruct(wait=True)
    settings.photo_path = ""
    with pytest.raises(RuntimeError, match="Choose a photo"):
        bpy.ops.ganfit.reconstruct(wait=True)
    settings.photo_path = str(sample_photo)
    with pytest.raises(RuntimeError, match="without writing a result"):
        bpy.ops.ganfit.reconstruct(wait=True)  # exits 0 but writes nothing
    _assert_clean(bpy, addon, [])
