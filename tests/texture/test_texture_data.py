"""The data builder through the CLI on real photos: one sample per usable face (albedo,
confidence, expression), faceless and broken files listed and skipped, a second run
resumes without redoing anything; and a model built from those samples in seconds."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.texture.dataset import is_held_out, list_photos, load_sample, sample_paths

REPO = Path(__file__).resolve().parents[2]


def engine(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_split_is_fixed_and_disjoint(tmp_path):
    for i in range(40):
        (tmp_path / f"P{i:03d}.jpg").write_bytes(b"")
    train = {p.name for p in list_photos(tmp_path, "train")}
    held = {p.name for p in list_photos(tmp_path, "held-out")}
    assert train and held and not train & held and len(train | held) == 40
    assert all(is_held_out(name) for name in held)
    assert len(list_photos(tmp_path, "all", limit=5)) == 5


@pytest.mark.slow
def test_texture_data_build_skips_resumes_and_feeds_a_model(tmp_path, astronaut, face_model):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(astronaut).save(photos / "astronaut.png")
    Image.fromarray(np.fliplr(astronaut).copy()).save(photos / "mirrored.jpg")
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(photos / "wall.png")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "data"
    run = engine("texture-data", "build", str(photos), "--out", str(out), "--workers", "1",
                 "--steps", "60")
    assert run.returncode == 0, run.stderr[-2000:]
    names = [p.stem for p in sample_paths(out)]
    assert names == ["astronaut", "mirrored"]
    skipped = (out / "skipped.tsv").read_text()
    assert "wall.png\tno face" in skipped and "broken.jpg" in skipped
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples"] == 2 and manifest["atlas"] == [128, 256]

    sample = load_sample(out / "astronaut.npz")
    assert sample.albedo.shape == (3, 128, 256) and sample.confidence.shape == (128, 256)
    assert sample.expression.shape == (face_model.num_expressions,)
    trusted = sample.confidence > 0.5
    assert 2000 < trusted.sum() < 20000  # the face seen head-on, not the whole atlas
    skin = np.median(sample.albedo[:, trusted], axis=1)
    assert skin[0] > skin[2] + 0.05  # skin is redder than blue: de-lighting kept its hue

    again = engine("texture-data", "build", str(photos), "--out", str(out), "--workers", "1")
    assert again.returncode == 0
    assert "4 of 4 photos already done; fitting 0" in again.stderr

    model_file = tmp_path / "model.npz"
    built = engine("texture-model", "build", str(out), "--out", str(model_file),
                   "--components", "4")
    assert built.returncode == 0, built.stderr[-2000:]
    assert "1 components from 2 samples" in built.stderr  # at most N - 1 components
    assert engine("texture-model", "build", str(out), "--out", str(model_file)).returncode == 2
