"""The add-on in a real Blender window (Debian's Blender 3.4.1 under Xvfb, Mesa software
GL): installed from the legacy zip with Preferences' own operator, the sidebar's Face tab
opened with key presses, a real preview reconstruction of the sample photo run from the
panel in the live event loop, then Cancel and a photo without a face. The screenshots
are kept for looking at: in $GANFIT_WINDOW_OUT, else pytest's temporary folder (the path
is printed with -s)."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
KEEP_ENV = "GANFIT_WINDOW_OUT"  # a folder to keep the screenshots in (default: pytest's tmp)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def window_run(blender, xvfb, legacy_zip, astronaut_png, face_model, driver,
               tmp_path_factory):
    """One Blender session running the whole scenario; its report."""
    out = Path(os.environ.get(KEEP_ENV) or tmp_path_factory.mktemp("window"))
    no_face = out / "grey.png"
    Image.fromarray(np.full((320, 320, 3), 128, np.uint8)).save(no_face)
    config = {"scenario": "test", "zip": str(legacy_zip), "photo": str(astronaut_png),
              "no_face": str(no_face), "python": str(ROOT / ".venv" / "bin" / "python")}
    report = driver(blender, xvfb, config, out, timeout_s=900)
    print(f"window test screenshots: {out}")
    return report


def _crop(path: str, box: list[int]) -> np.ndarray:
    left, top, width, height = box
    return np.asarray(Image.open(path).convert("RGB"))[top:top + height, left:left + width]


def test_installed_from_the_legacy_zip_and_the_panel_drawn(window_run):
    install = window_run["steps"]["install"]
    assert install["registered"] and not install["numpy_advice"]
    assert "/addons/ganfit_blender/" in install["module_file"]  # where Install... puts it
    panel = window_run["steps"]["panel"]
    assert panel["drawn"]
    sidebar = _crop(window_run["screenshots"]["panel"], panel["sidebar"])
    assert sidebar.std() > 10  # widgets and text, not an empty region


def test_reconstruction_runs_in_the_live_loop_and_builds_the_head(window_run):
    run = window_run["steps"]["reconstruct"]
    assert run["started"]
    assert run["message"].startswith("Reconstructed in") and run["level"] == "INFO"
    # Progress advanced through the stages while the loop kept running, and the panel drew it.
    fractions = [fraction for _, fraction, _ in run["progress"]]
    assert fractions == sorted(fractions) and len(set(fractions)) >= 10
    assert {label.split()[0] for _, _, label in run["progress"]} >= {"Detecting", "Fitting"}
    drawn = run["panel_fractions"]
    assert len(set(drawn)) >= 5 and max(drawn) > 0.5
    assert run["loop_hz"] > 5, run["loop_hz"]
    # Only the sidebar is redrawn for progress: the 3D view far less often than it.
    assert run["draws"]["sidebar"] > 2 * run["draws"]["view"], run["draws"]
    # The new head: active, the only selected object, textured, with working sliders.
    assert run["active"] == "astronaut" and run["selected"] == ["astronaut"]
    assert run["textured"] and run["shape_keys"] > 50
    assert run["jaw_open_max_move_m"] > 0.005 and run["jaw_open_moved_coordinates"] > 300


def test_screenshots_show_progress_and_the_head(window_run):
    shots, panel = window_run["screenshots"], window_run["steps"]["panel"]
    progress = _crop(shots["reconstruct_progress"], panel["sidebar"])
    done = _crop(shots["reconstruct_done"], panel["sidebar"])
    assert np.abs(progress.astype(int) - done.astype(int)).mean() > 1  # the panel changed
    empty = _crop(shots["panel"], panel["view"]).astype(int)
    with_head = _crop(shots["reconstruct_done"], panel["view"]).astype(int)
    assert (np.abs(with_head - empty).sum(axis=2) > 30).mean() > 0.02  # the head is drawn


def test_cancel_stops_the_engine_at_once(window_run):
    cancel = window_run["steps"]["cancel"]
    assert cancel["started"] and cancel["stage_at_cancel"]
    assert cancel["cancel_seconds"] < 2.5
    assert not cancel["engine_alive"] and not cancel["work_dir_left"]
    assert not cancel["job_left"] and cancel["message"] == "Cancelled"


def test_a_photo_without_a_face_is_a_message(window_run):
    error = window_run["steps"]["error"]
    assert error["started"] and error["level"] == "ERROR"
    assert "face" in error["message"].lower(), error["message"]
    assert "W0000" not in error["message"] and "signal" not in error["message"]
    assert error["new_objects"] == []
