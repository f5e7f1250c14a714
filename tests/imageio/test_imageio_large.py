"""Loading a 10-megapixel photo: bounded memory and time, and a bounded working copy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from engine.imageio import load_photo, working_image

_MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from engine.imageio import load_photo, working_image
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    photo = load_photo(sys.argv[1])
    t1 = time.perf_counter()
    image, scale = working_image(photo, 1024)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"load_s": t1 - t0, "working_s": t2 - t1,
                      "peak_extra_mb": (peak - before) / 1024, "shape": photo.rgb.shape}))
    """
)


def _ten_megapixel_jpeg(astronaut: np.ndarray, path: Path) -> Path:
    Image.fromarray(astronaut).resize((3648, 2736), Image.Resampling.BILINEAR).save(
        path, quality=90
    )
    return path


def test_ten_megapixel_load_memory_and_time(astronaut, tmp_path: Path):
    """In a fresh process: peak memory over the imports stays under 4x the decoded RGB
    (30 MB), i.e. no float copies of the full image, and loading takes seconds at most."""
    path = _ten_megapixel_jpeg(astronaut, tmp_path / "big.jpg")
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True, text=True, check=True, cwd=repo,
    )  # fmt: skip
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    print(stats)
    assert stats["shape"] == [2736, 3648, 3]
    assert stats["peak_extra_mb"] < 4 * 30
    assert stats["load_s"] < 5.0 and stats["working_s"] < 2.0


def test_ten_megapixel_working_copy(astronaut, tmp_path: Path):
    photo = load_photo(_ten_megapixel_jpeg(astronaut, tmp_path / "big.jpg"))
    image, scale = working_image(photo, 1024)
    assert image.shape == (768, 1024, 3) and image.dtype == np.uint8
    assert scale == 3648 / 1024
    # the working copy is the (smoothed) original: compare with a plain box downscale
    ref = np.asarray(Image.fromarray(photo.rgb).resize((1024, 768), Image.Resampling.BOX))
    assert np.abs(image.astype(int) - ref).mean() < 3.0
