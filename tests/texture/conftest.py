"""Fixtures of the texture tests: a tiny data folder in the `texture-data build` format."""

from pathlib import Path

import numpy as np
import pytest

from engine.texture.dataset import Sample, save_sample


def write_tiny_data(folder: Path) -> Path:
    """Six smooth skin-coloured (3, 16, 32) atlases, each trusted over the face tile's middle
    and a random patch of the head tile."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ys, xs = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 32), indexing="ij")
    for i in range(6):
        tone = np.array([0.75, 0.55, 0.45]) * rng.uniform(0.7, 1.1)
        shade = 0.1 * np.sin(3 * xs + rng.uniform(0, 3)) * np.cos(2 * ys)
        albedo = np.clip(tone[:, None, None] + shade[None], 0, 1)
        confidence = np.zeros((16, 32))
        confidence[3:13, 4:12] = 1.0
        top, left = rng.integers(0, 8), rng.integers(16, 24)
        confidence[top:top + 8, left:left + 8] = 0.8
        save_sample(folder / f"P{i:03d}.npz",
                    Sample(albedo, confidence, np.zeros(4, np.float32)))
    return folder


@pytest.fixture
def data(tmp_path) -> Path:
    """A tiny data folder (`write_tiny_data`)."""
    return write_tiny_data(tmp_path / "data")


@pytest.fixture(scope="module")
def module_data(tmp_path_factory) -> Path:
    """A tiny data folder shared by one test module."""
    return write_tiny_data(tmp_path_factory.mktemp("texture") / "data")
