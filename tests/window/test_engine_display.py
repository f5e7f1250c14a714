"""The engine runs headless whatever the caller's display: the real CLI with DISPLAY set
to a live X server (where MediaPipe used to load Mesa's GL and torch's compiler stack then
segfaulted: exit 139) and to a display that does not exist. Both runs go side by side."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _start(photo: Path, out: Path, display: str) -> subprocess.Popen:
    env = {**os.environ, "DISPLAY": display, "OMP_NUM_THREADS": "1"}
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "reconstruct", str(photo), "--out", str(out),
         "--quality", "preview", "--device", "cpu", "--progress", "jsonl"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_reconstruct_exits_0_with_a_live_and_a_bogus_display(xvfb, astronaut_png, face_model,
                                                              tmp_path):
    runs = {display: _start(astronaut_png, tmp_path / f"out{i}", display)
            for i, display in enumerate((xvfb, ":4711"))}
    for display, run in runs.items():
        stdout, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, (display, run.returncode, stdout[-500:], stderr[-2000:])
        done = json.loads(stdout.strip().splitlines()[-1])
        assert done["event"] == "done" and Path(done["result"]).is_file()
