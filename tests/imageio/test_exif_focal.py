"""EXIF FocalLengthIn35mmFilm read from real JPEG files."""

import math

import numpy as np
import pytest
from PIL import Image

from engine.imageio import EXIF_IFD, FOCAL_35MM_TAG, load_photo


def _jpeg(path, focal=None, size=(300, 200)):
    image = Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8))
    exif = Image.Exif()
    if focal is not None:
        exif.get_ifd(EXIF_IFD)[FOCAL_35MM_TAG] = focal
    image.save(path, exif=exif)
    return path


def test_focal_read_and_converted_to_pixels(tmp_path):
    photo = load_photo(_jpeg(tmp_path / "f50.jpg", 50))
    assert photo.focal_35mm == 50.0
    # 35 mm equivalent: relative to the full-frame diagonal (43.27 mm)
    assert photo.focal_px(300, 200) == pytest.approx(50 * math.hypot(300, 200) / 43.27)
    assert photo.focal_px(150, 100) == pytest.approx(photo.focal_px(300, 200) / 2)


@pytest.mark.parametrize("focal", [None, 0])
def test_absent_or_unknown_focal_is_none(tmp_path, focal):
    photo = load_photo(_jpeg(tmp_path / "none.jpg", focal))
    assert photo.focal_35mm is None
    assert photo.focal_px(300, 200) is None


def test_exif_focal_reaches_the_fit(tmp_path):
    """The pipeline hands the EXIF focal (working pixels) to the fit."""
    import torch

    from engine.pipeline import fit_inputs
    from engine.report import View

    photo = load_photo(_jpeg(tmp_path / "f85.jpg", 85, size=(400, 300)))
    view = View(photo, photo.rgb, 1.0, np.zeros((68, 2)), [])
    inputs = fit_inputs([view], torch.device("cpu"), ["jawOpen"])
    assert inputs.focal is not None
    assert float(inputs.focal[0]) == pytest.approx(85 * 500 / 43.27, rel=1e-5)
    assert inputs.dense is None and inputs.expression_prior is None
