"""Fault injection on the real CLI (`python -m engine reconstruct`, a subprocess, preview
quality): signals at chosen moments, SIGKILL while writing, two runs into one folder, a
closed stdout, an unwritable destination, photos of two people.

Each run is watched through its own progress stream; a fault is injected when the stream
(or the `.NAME.partial-*` staging folder appearing beside --out) says the run reached the
moment under test. Afterwards the --out folder's parent is inspected: a whole result or
nothing, and no hidden leftovers. --force interrupted between its two renames is tested
on engine.publish directly (tests/test_publish.py): no signal can be aimed at a gap that
renameat2's exchange does not have.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PORTRAITS = REPO.parent / "shared/datasets/congress-portraits/images"

pytestmark = pytest.mark.slow


class Run:
    """A `python -m engine reconstruct ... --progress jsonl` process being watched."""

    def __init__(self, images: list[Path], out: Path, *extra: str):
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "reconstruct", *map(str, images), "--out", str(out),
             "--quality", "preview", "--device", "cpu", "--progress", "jsonl", *extra],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
        self.events: list[dict] = []

    def wait_for_stage(self, stage: str) -> None:
        """Read events until the stage `stage` begins (fails if the run ends first)."""
        for line in self.proc.stdout:
            self.events.append(json.loads(line))
            if self.events[-1] == {"event": "stage", "name": stage}:
                return
        pytest.fail(f"the run ended before stage {stage!r}: {self.finish()[1][-1500:]}")

    def staging(self) -> Path | None:
        """The run's staging folder, once the write has begun."""
        return next(iter(self.out.parent.glob(f".{self.out.name}.partial-*")), None)

    def signal(self, number: int) -> None:
        self.proc.send_signal(number)

    def finish(self, timeout: float = 900) -> tuple[int, str]:
        """(exit code, stderr); the remaining stdout events are parsed into `events`."""
        out, err = self.proc.communicate(timeout=timeout)
        self.events += [json.loads(line) for line in out.splitlines() if line.strip()]
        return self.proc.returncode, err


def signal_when_writing(runs: list[tuple[Run, int]], timeout: float = 900) -> None:
    """Poll the runs (they work side by side) and send each its signal as soon as its
    staging folder appears."""
    waiting = list(runs)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for run, number in list(waiting):
            if run.staging() is not None:
                run.signal(number)
                waiting.remove((run, number))
            elif run.proc.poll() is not None:
                pytest.fail(f"a run ended before writing: {run.finish()[1][-1500:]}")
        time.sleep(0.002)
    assert not waiting, "no staging folder appeared"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def assert_cancelled(code: int, stderr: str, run: Run) -> None:
    assert code == 5, stderr[-1500:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("cancelled")
    assert run.events[-1] == {"event": "error", "code": "INTERNAL", "message": "cancelled"}


@pytest.fixture
def parent(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(("stage", "signum"), [("landmark_fit", signal.SIGTERM),
                                                ("detect", signal.SIGHUP)],
                         ids=["sigterm-fit", "sighup-detect"])
def test_signal_during_the_fit_cancels_cleanly(astronaut_png, parent, stage, signum):
    run = Run([astronaut_png], parent / "face")
    run.wait_for_stage(stage)
    run.signal(signum)
    code, stderr = run.finish()
    assert_cancelled(code, stderr, run)
    assert os.listdir(parent) == []


@pytest.fixture(scope="module")
def interrupted_writes(astronaut_png, tmp_path_factory) -> dict[str, tuple[Run, int, str]]:
    """Two runs side by side, each stopped once its staging folder exists: "killed"
    (SIGKILL, a new folder) and "terminated" (SIGTERM, --force over an old result)."""
    killed_out = tmp_path_factory.mktemp("killed") / "face"
    old = tmp_path_factory.mktemp("terminated") / "face"
    old.mkdir()
    (old / "result.json").write_text('{"old": true}')
    killed = Run([astronaut_png], killed_out)
    terminated = Run([astronaut_png], old, "--force")
    signal_when_writing([(killed, signal.SIGKILL), (terminated, signal.SIGTERM)])
    return {name: (run, *run.finish()) for name, run in
            (("killed", killed), ("terminated", terminated))}


def test_sigterm_while_writing_with_force_keeps_the_old_result(interrupted_writes):
    run, code, stderr = interrupted_writes["terminated"]
    assert_cancelled(code, stderr, run)
    assert os.listdir(run.out.parent) == ["face"]
    assert json.loads((run.out / "result.json").read_text()) == {"old": True}


def test_killed_while_writing_then_two_runs_at_once(astronaut_png, interrupted_writes):
    """SIGKILL during the write leaves a staging folder and a lock file (no handler can
    run); then two runs started together into that same new folder: one writes the
    result and cleans the dead run's leftovers, the other stops at once with exit 2."""
    killed, code, _ = interrupted_writes["killed"]
    out, parent = killed.out, killed.out.parent
    assert code == -signal.SIGKILL
    assert not out.exists()
    stale = leftovers(parent)
    assert any(name.startswith(".face.partial-") for name in stale), stale

    first = Run([astronaut_png], out)
    first.wait_for_stage("detect")  # the first run holds the folder from its start
    second = Run([astronaut_png], out)
    code, stderr = second.finish()
    assert code == 2, stderr[-1500:]
    assert "another engine run is writing" in stderr and str(out) in stderr
    assert second.events == [{"event": "error", "code": "BAD_IMAGE",
                              "message": stderr.strip().splitlines()[-1][len("error: "):]}]
    code, stderr = first.finish()
    assert code == 0, stderr[-1500:]
    assert os.listdir(parent) == ["face"]
    assert json.loads((out / "result.json").read_text())["views"][0]["notes"] == []


def test_closed_stdout_ends_quietly(astronaut_png, parent):
    """`reconstruct ... --progress jsonl | head -1`: head exits after one line."""
    command = (f"{sys.executable} -m engine reconstruct {astronaut_png} --out {parent / 'face'} "
               "--quality preview --device cpu --progress jsonl | head -1; "
               "echo \"status ${PIPESTATUS[0]}\"")
    done = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    first, status = done.stdout.splitlines()
    assert json.loads(first) == {"event": "stage", "name": "detect"}
    assert status == "status 5"
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert "the progress stream (stdout) was closed" in done.stderr.strip().splitlines()[-1]
    assert os.listdir(parent) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_unwritable_destination_fails_before_the_fit(astronaut_png):
    """/proc takes no new entries, even from root: exit 2 before any stage starts."""
    run = Run([astronaut_png], Path("/proc/ganfit-result"))
    code, stderr = run.finish()
    assert code == 2, stderr[-1500:]
    assert "cannot write in /proc" in stderr
    assert [e["event"] for e in run.events] == ["error"]


def test_two_people_exit_2_naming_the_photos(astronaut_png, parent):
    portrait = PORTRAITS / "A000055.jpg"
    if not portrait.is_file():
        pytest.skip(f"no congress portraits at {PORTRAITS}")
    run = Run([astronaut_png, portrait], parent / "face")
    code, stderr = run.finish()
    assert code == 2, stderr[-1500:]
    message = stderr.strip().splitlines()[-1]
    assert "different people" in message and "--allow-different-people" in message
    assert astronaut_png.name in message and portrait.name in message
    assert run.events[-1]["code"] == "BAD_IMAGE"
    assert os.listdir(parent) == []
