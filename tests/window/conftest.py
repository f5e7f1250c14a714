"""Fixtures for the real-window tests: an X server (Xvfb), a Blender binary, the legacy
add-on zip, and a runner for tests/window/blender_driver.py.

Debian's Blender 3.4.1 and Xvfb come from apt (scripts/setup.sh installs them where it
runs as root); where either is missing the tests say so and skip. $GANFIT_BLENDER names
another Blender binary.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "blender_driver.py"
SCREEN = "1600x1000x24"
INSTALL_HINT = "scripts/setup.sh installs it with apt-get where it runs as root"


def start_xvfb() -> tuple[subprocess.Popen, str] | None:
    """A fresh X server (`Xvfb -displayfd`: it picks a free display) and its ':N';
    None when Xvfb is missing or does not start."""
    binary = shutil.which("Xvfb")
    if binary is None:
        return None
    read, write = os.pipe()
    server = subprocess.Popen([binary, "-displayfd", str(write), "-screen", "0", SCREEN,
                               "-nolisten", "tcp"], pass_fds=(write,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        return None
    return server, f":{number}"


@pytest.fixture(scope="session")
def xvfb():
    """A fresh X server; yields its display, ':N'."""
    started = start_xvfb()
    if started is None:
        pytest.skip(f"Xvfb is missing or does not start ({INSTALL_HINT}: apt package xvfb)")
    server, display = started
    yield display
    server.terminate()
    server.wait(10)


@dataclass(frozen=True)
class Blender:
    path: str
    version: str


def find_blender() -> tuple[Blender | None, str]:
    """The Blender binary ($GANFIT_BLENDER, else `blender` on PATH) with numpy in its
    Python (the add-on needs it; Debian's package is python3-numpy); else None and why."""
    path = os.environ.get("GANFIT_BLENDER") or shutil.which("blender")
    if path is None:
        return None, f"no Blender binary ({INSTALL_HINT}: apt packages blender python3-numpy)"
    probe = subprocess.run(
        [path, "-b", "--factory-startup", "--python-expr",
         "import bpy, importlib.util; print('PROBE', bpy.app.version_string, "
         "importlib.util.find_spec('numpy') is not None)"],
        capture_output=True, text=True, timeout=120)
    line = next((ln for ln in probe.stdout.splitlines() if ln.startswith("PROBE")), "")
    if not line:
        return None, f"{path} does not run: {probe.stderr.strip()[-300:]}"
    _, version, has_numpy = line.split()
    if has_numpy != "True":
        return None, (f"Blender {version}'s Python has no numpy (Debian: apt install "
                      "python3-numpy)")
    return Blender(path, version), ""


@pytest.fixture(scope="session")
def blender() -> Blender:
    found, reason = find_blender()
    if found is None:
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def legacy_zip(tmp_path_factory) -> Path:
    """The add-on zip for Blender 3.4-4.1, built by build_addon.py."""
    sys.path.insert(0, str(ROOT))
    import build_addon

    return build_addon.build_legacy(tmp_path_factory.mktemp("dist"))


def blender_env(display: str | None, home: Path) -> dict[str, str]:
    """Blender's environment: its user folders in a throw-away `home` (never the real
    user's preferences and add-ons), Mesa's software GL, the given X display."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    for name in ("CONFIG", "SCRIPTS", "DATAFILES"):
        (home / name.lower()).mkdir(parents=True, exist_ok=True)
        env[f"BLENDER_USER_{name}"] = str(home / name.lower())
    env["BLENDER_USER_RESOURCES"] = str(home)
    env["LIBGL_ALWAYS_SOFTWARE"] = "1"
    if display is not None:
        env["DISPLAY"] = display
    return env


@pytest.fixture(scope="session")
def environment():
    """blender_env, for tests of this folder."""
    return blender_env


@pytest.fixture(scope="session")
def driver():
    """run_driver, for tests and fixtures of this folder."""
    return run_driver


def run_driver(blender: Blender, display: str, config: dict, out: Path,
               timeout_s: float) -> dict:
    """Run blender_driver.py in a Blender window on `display`; its report.json."""
    out.mkdir(parents=True, exist_ok=True)
    config = {**config, "out": str(out)}
    (out / "config.json").write_text(json.dumps(config))
    home = Path(tempfile.mkdtemp(prefix="ganfit-blender-home-"))
    try:
        with (out / "blender.log").open("w") as log:
            run = subprocess.run(
                [blender.path, "--factory-startup", "--python", str(DRIVER), "--",
                 str(out / "config.json")], env=blender_env(display, home),
                stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    report_path = out / "report.json"
    tail = (out / "blender.log").read_text(errors="replace")[-3000:]
    assert report_path.is_file(), f"Blender exited {run.returncode} without a report:\n{tail}"
    report = json.loads(report_path.read_text())
    assert "error" not in report, report["error"] + "\n" + tail
    return report
