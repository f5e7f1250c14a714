"""engine.publish: claiming a destination, cleaning dead runs' leftovers, publishing
atomically without replacing what may not be replaced, --force interrupted between steps.

Another live run is a real second process holding the claim (a small Python child); a run
killed with SIGKILL is that child killed, so the OS drops its lock as it would for a real
engine. The portable fallbacks (mkdir + rename, the two-rename journal) are tested here
too, beside the Linux renameat2 paths.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine import publish
from engine.errors import BadInputError

REPO = Path(__file__).resolve().parents[1]

HOLDER = """
import sys
from pathlib import Path
from engine import publish
out = Path(sys.argv[1])
publish.claim(out, force=True)
staging = publish.staging_folder(out)
(staging / "result.json").write_text("half")
print(staging, flush=True)
sys.stdin.read()
"""


@pytest.fixture(autouse=True)
def _no_claims_left():
    yield
    publish.release_all()


def result(folder: Path, text: str) -> Path:
    folder.mkdir()
    (folder / "result.json").write_text(text)
    return folder


def hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


class Holder:
    """A live process that claimed `out` and has a half-written staging folder."""

    def __init__(self, out: Path):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.staging = Path(self.proc.stdout.readline().strip())
        assert self.staging.is_dir()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.mark.parametrize("native", [True, False], ids=["renameat2", "portable"])
def test_rename_noreplace_never_replaces(tmp_path: Path, native: bool):
    new = result(tmp_path / "new", "new")
    out = result(tmp_path / "out", "old")
    with pytest.raises(publish.DestinationTaken):
        publish.rename_noreplace(new, out, native=native)
    assert (out / "result.json").read_text() == "old"
    assert (new / "result.json").read_text() == "new"
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder is still something the run may not replace
    with pytest.raises(publish.DestinationTaken):
        publish.rename_noreplace(new, empty, native=native)
    publish.rename_noreplace(new, tmp_path / "free", native=native)
    assert (tmp_path / "free" / "result.json").read_text() == "new"


@pytest.mark.parametrize("native", [True, False], ids=["exchange", "journal"])
def test_replace_folder_swaps_and_removes_the_old(tmp_path: Path, native: bool):
    new = result(tmp_path / ".out.partial-1-x", "new")
    out = result(tmp_path / "out", "old")
    publish.replace_folder(new, out, native=native)
    assert (out / "result.json").read_text() == "new"
    assert os.listdir(tmp_path) == ["out"]


def test_force_interrupted_between_the_two_renames_keeps_the_old_result(tmp_path, monkeypatch):
    """The portable --force path fails (Ctrl-C) after the old folder was moved aside:
    the old result is put back where it was."""
    new = result(tmp_path / ".out.partial-1-x", "new")
    out = result(tmp_path / "out", "old")
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the old folder is aside, the new one not yet in place
            assert not out.exists()
            raise KeyboardInterrupt
        real_rename(src, dst)

    monkeypatch.setattr(publish.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        publish.replace_folder(new, out, native=False)
    monkeypatch.undo()
    assert (out / "result.json").read_text() == "old"


def test_force_killed_between_the_two_renames_is_completed_by_the_next_claim(tmp_path: Path):
    """A SIGKILL between the two renames leaves only `.out.old-PID` (no handler runs):
    the next run's claim puts it back before anything else."""
    result(tmp_path / ".out.old-424242", "old")
    result(tmp_path / ".out.partial-424242-abc", "new, unfinished")
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match="already exists"):
        publish.claim(out, force=False)  # the restored result is not replaced without --force
    assert (out / "result.json").read_text() == "old"
    assert hidden(tmp_path) == []


def test_second_claim_fails_while_a_live_run_holds_it_then_cleans_after_kill(tmp_path: Path):
    out = tmp_path / "out"
    holder = Holder(out)
    try:
        with pytest.raises(BadInputError, match="another engine run is writing"):
            publish.claim(out, force=False)
        assert holder.staging.is_dir()  # a live run's staging folder is never touched
    finally:
        holder.kill()
    publish.claim(out, force=False)  # the dead run's lock is gone with it
    assert not holder.staging.exists()
    publish.release(out)
    assert hidden(tmp_path) == []


def test_claim_sweeps_dead_leftovers_of_other_names_but_not_live_ones(tmp_path: Path):
    live = Holder(tmp_path / "live")
    dead = Holder(tmp_path / "dead")
    dead.kill()
    killed_in_fit = tmp_path / ".fit.lock"  # a run killed before it wrote anything
    killed_in_fit.write_bytes(publish.LOCK_MARK + b" 424242\n")
    users = tmp_path / ".notes.lock"  # not the engine's: never removed
    users.write_text("mine")
    try:
        publish.claim(tmp_path / "mine", force=False)
        assert live.staging.is_dir()
        assert not dead.staging.exists()
        assert not (tmp_path / ".dead.lock").exists()
        assert not killed_in_fit.exists()
        assert users.read_text() == "mine"
    finally:
        live.kill()


def test_publish_without_force_keeps_a_destination_that_appeared(tmp_path: Path):
    out = tmp_path / "out"
    publish.claim(out, force=False)
    staging = publish.staging_folder(out)
    (staging / "result.json").write_text("mine")
    result(out, "someone else's")
    with pytest.raises(BadInputError, match=r"appeared while this run was working.*out-2"):
        publish.publish(staging, out, force=False)
    assert (out / "result.json").read_text() == "someone else's"
    assert (tmp_path / "out-2" / "result.json").read_text() == "mine"
    assert hidden(tmp_path) == []


def test_publish_with_force_replaces_and_leaves_nothing_hidden(tmp_path: Path):
    out = result(tmp_path / "out", "old")
    publish.claim(out, force=True)
    staging = publish.staging_folder(out)
    (staging / "result.json").write_text("new")
    assert publish.publish(staging, out, force=True) == out
    assert (out / "result.json").read_text() == "new"
    assert hidden(tmp_path) == []


def test_unwritable_or_missing_folder_is_refused(tmp_path: Path):
    with pytest.raises(BadInputError, match="does not exist"):
        publish.claim(tmp_path / "no" / "out", force=False)
    if sys.platform.startswith("linux"):  # /proc refuses new entries, even to root
        with pytest.raises(BadInputError, match="cannot write in /proc"):
            publish.claim(Path("/proc/ganfit-out"), force=False)
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(BadInputError, match="cannot write in"):
            publish.claim(locked / "out", force=False)


def test_nearly_full_disk_is_refused_up_front(tmp_path: Path, monkeypatch):
    real = publish.shutil.disk_usage
    monkeypatch.setattr(publish.shutil, "disk_usage",
                        lambda path: real(path)._replace(free=publish.MIN_FREE_BYTES - 1))
    with pytest.raises(BadInputError, match=r"only 64 MB free in .*needs up to 64 MB"):
        publish.claim(tmp_path / "out", force=False)
    assert hidden(tmp_path) == []  # the claim was given back
