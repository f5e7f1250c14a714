"""Fixtures for the add-on tests: headless Blender (the bpy module), the built extension
installed into a throw-away user folder, a result folder, and fake engines.

BLENDER_USER_RESOURCES must point at a temporary folder before bpy is first imported,
or the extension would be installed into the real user's Blender folder; the `addon`
fixture refuses to run if bpy was imported earlier with another user folder.
"""

import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
USER_RESOURCES = Path(tempfile.mkdtemp(prefix="ganfit-blender-user-"))
os.environ["BLENDER_USER_RESOURCES"] = str(USER_RESOURCES)
ADDON_MODULE = "bl_ext.user_default.ganfit_blender"
REUSE_RESULT_ENV = "GANFIT_TEST_RESULT_DIR"


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(USER_RESOURCES, ignore_errors=True)


@pytest.fixture(scope="session")
def sample_photo(astronaut_png) -> Path:
    """skimage's astronaut (a real 512x512 portrait, public domain) as a PNG (tests/conftest)."""
    return astronaut_png


@pytest.fixture(scope="session")
def result_dir(request) -> Path:
    """A result folder for the add-on to read: the engine's own writer on a known face
    without a fit (tests/conftest.py's model_result; seconds). $GANFIT_TEST_RESULT_DIR
    names an existing result folder to use instead (e.g. a real reconstruction)."""
    if os.environ.get(REUSE_RESULT_ENV):
        return Path(os.environ[REUSE_RESULT_ENV])
    return request.getfixturevalue("model_result")


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory) -> Path:
    """The extension zip, built and validated by build_addon.py."""
    sys.path.insert(0, str(ROOT))
    import build_addon

    return build_addon.build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def bpy_module():
    bpy = pytest.importorskip("bpy")
    extensions = Path(bpy.utils.user_resource("EXTENSIONS")).resolve()
    if not extensions.is_relative_to(USER_RESOURCES.resolve()):
        pytest.skip(f"bpy was imported before BLENDER_USER_RESOURCES was set ({extensions}); "
                    "run the add-on tests on their own")
    return bpy


@pytest.fixture(scope="session")
def addon(bpy_module, addon_zip):
    """The add-on, installed from the zip the way an artist installs it, and enabled;
    returns its top-level module (bl_ext.user_default.ganfit_blender)."""
    bpy = bpy_module
    result = bpy.ops.extensions.package_install_files(
        filepath=str(addon_zip), repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}
    module = sys.modules[ADDON_MODULE]
    yield module
    bpy.ops.preferences.addon_disable(module=ADDON_MODULE)


def clear_scene(bpy) -> None:
    """Remove every object and the data the tests create, keeping the scene itself."""
    ids = [*bpy.data.objects, *bpy.data.meshes, *bpy.data.materials, *bpy.data.images,
           *bpy.data.cameras, *bpy.data.lights]
    bpy.data.batch_remove(ids)


@pytest.fixture
def scene(addon, bpy_module):
    """An empty scene with the add-on enabled; the add-on's status cleared."""
    bpy = bpy_module
    clear_scene(bpy)
    status = bpy.context.window_manager.ganfit_status
    status.message, status.level = "", "INFO"
    yield bpy.context.scene
    addon.bl_jobs.shutdown()
    clear_scene(bpy)


@pytest.fixture
def addon_prefs(addon, bpy_module):
    prefs = bpy_module.context.preferences.addons[ADDON_MODULE].preferences
    saved = prefs.engine_python
    yield prefs
    prefs.engine_python = saved


@pytest.fixture
def fake_engine(tmp_path, addon_prefs):
    """Factory: make an executable stand-in for the engine's Python and select it in the
    add-on preferences. `FAKE -m engine reconstruct ...` runs `body` with `args` (argv
    after `-m engine`), `out` (the --out folder), `emit(event, **fields)` (one JSON
    progress line) and `record(**fields)` (appends to the returned log file) defined."""

    def make(body: str) -> Path:
        script = tmp_path / "fake_python"
        log = tmp_path / "fake_log.jsonl"
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys, time\n"
            "args = sys.argv[3:]\n"
            "out = args[args.index('--out') + 1] if '--out' in args else None\n"
            "def emit(event, **fields):\n"
            "    print(json.dumps({'event': event, **fields}), flush=True)\n"
            "def record(**fields):\n"
            f"    with open({str(log)!r}, 'a') as f:\n"
            "        f.write(json.dumps(fields) + '\\n')\n"
            + body)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        addon_prefs.engine_python = str(script)
        return log

    return make


def read_log(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped (Linux /proc)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def engine_tools():
    """Helpers for fake-engine tests: (read_log, pid_alive)."""
    return read_log, pid_alive
