"""`assets list` and `assets list --check` verify the installed face model's content.

Every case damages a copy of the installed cache (GANFIT_HOME in a temporary folder; the
real cache is never touched): a flipped byte, a truncated or deleted model.npz, a
deleted manifest. `assets list` (what the add-on's preferences show, line by line) must
say "damaged" with the fix and still exit 0; `--check` must exit 4 naming the fix.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.assets import ict_facekit
from engine.cli import main
from engine.paths import ganfit_home

REPO = Path(__file__).resolve().parents[2]


def flip_byte(folder: Path) -> None:
    model = folder / "model.npz"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))


def truncate(folder: Path) -> None:
    model = folder / "model.npz"
    model.write_bytes(model.read_bytes()[:-1000])


DAMAGE: dict[str, Callable[[Path], None]] = {
    "flipped-byte": flip_byte,
    "truncated": truncate,
    "model-deleted": lambda folder: (folder / "model.npz").unlink(),
    "manifest-deleted": lambda folder: (folder / "manifest.json").unlink(),
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the installed asset cache, used as GANFIT_HOME."""
    installed = ict_facekit.install_dir(ganfit_home())
    if not (installed / "manifest.json").is_file():
        pytest.skip(f"the face model is not installed in {ganfit_home()}")
    copy = tmp_path / "home"
    shutil.copytree(installed, ict_facekit.install_dir(copy))
    monkeypatch.setenv("GANFIT_HOME", str(copy))
    return copy


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["assets", "list", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ict_row(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(ict_facekit.NAME))


def test_intact_copy_is_installed(home, capsys):
    code, out, _ = run_cli(capsys)
    assert code == 0
    assert ict_row(out).split()[1] == "installed"
    assert str(ict_facekit.install_dir(home)) in out
    assert run_cli(capsys, "--check")[0] == 0
    assert run_cli(capsys, "--check", "ict-facekit")[0] == 0


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damage_is_reported_with_the_fix(home, capsys, damage):
    damage(ict_facekit.install_dir(home))
    code, out, _ = run_cli(capsys)
    assert code == 0  # the listing itself worked
    row = ict_row(out)
    assert row.split()[1] == "damaged"
    assert "python -m engine assets fetch" in row
    for argv in (["--check"], ["--check", "ict-facekit"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 4
        assert ict_row(out).split()[1] == "damaged"
        assert "ict-facekit is damaged" in err and "assets fetch" in err


def test_missing_model_is_missing_not_damaged(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANFIT_HOME", str(tmp_path / "empty"))
    code, out, _ = run_cli(capsys)
    assert code == 0 and ict_row(out).split()[1] == "missing"
    code, _, err = run_cli(capsys, "--check")
    assert code == 4 and "ict-facekit is missing" in err


@pytest.mark.slow
def test_refetch_repairs_the_damage(home, capsys, face_x_model):
    flip_byte(ict_facekit.install_dir(home))
    assert main(["assets", "fetch", "--from", str(face_x_model.parent)]) == 0
    assert run_cli(capsys, "--check")[0] == 0


@pytest.mark.slow
def test_real_cli_reports_a_flipped_byte_with_exit_4(home):
    flip_byte(ict_facekit.install_dir(home))
    run = subprocess.run([sys.executable, "-m", "engine", "assets", "list", "--check"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 4
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: ict-facekit is damaged")
