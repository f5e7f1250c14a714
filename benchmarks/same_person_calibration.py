"""Calibrate engine/identity/same_person.py: dlib descriptor distances of different people
and of altered copies of one photo, and how the thresholds split them.

Different people: every pair of the congress portraits (public domain, one per person).
Same person: each portrait against altered copies of itself (mirrored, cropped and
rescaled to a third, darkened with gamma, blurred, JPEG quality 15, rotated 12 degrees),
each copy re-detected. Altered copies are easier than two real photos of one person
(other day, age, pose, light), so the "same" distances here are a lower bound: the
thresholds keep a margin above them.

    .venv/bin/python benchmarks/same_person_calibration.py [--limit N]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.identity.dlib_resnet import load_dlib_resnet  # noqa: E402
from engine.identity.same_person import (  # noqa: E402
    DIFFERENT_MIN,
    SAME_MAX,
    face_descriptors,
)
from engine.landmarks import get_detector, select_face  # noqa: E402

PORTRAITS = REPO.parent / "shared/datasets/congress-portraits/images"


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


ALTERATIONS = {
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "small": lambda im: im.crop((60, 20, 540, 500)).resize((160, 160), Image.Resampling.BILINEAR),
    "dark": lambda im: im.point(lambda v: int(255 * (v / 255) ** 2.2)),
    "blurred": lambda im: im.filter(ImageFilter.GaussianBlur(3)),
    "jpeg15": lambda im: _jpeg(im, 15),
    "rotated": lambda im: im.rotate(12, resample=Image.Resampling.BILINEAR),
}


def describe(detector, net, image: np.ndarray) -> torch.Tensor | None:
    faces = detector.detect(image)
    if not faces:
        return None
    face, _ = select_face(faces, (image.shape[1], image.shape[0]))
    return face_descriptors(net, [image], [face.landmarks68])[0]


def summary(name: str, values: np.ndarray) -> str:
    q = np.percentile(values, [0, 1, 5, 50, 95, 99, 100])
    return (f"{name:12s} n={len(values):6d}  min {q[0]:.3f}  p1 {q[1]:.3f}  p5 {q[2]:.3f}  "
            f"median {q[3]:.3f}  p95 {q[4]:.3f}  p99 {q[5]:.3f}  max {q[6]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="use the first N portraits")
    args = parser.parse_args()
    torch.set_num_threads(1)
    files = sorted(PORTRAITS.glob("*.jpg"))
    if args.limit:
        files = files[:args.limit]
    detector = get_detector("mediapipe")
    net = load_dlib_resnet("cpu")
    originals, same = [], {k: [] for k in ALTERATIONS}
    for path in files:
        image = Image.open(path).convert("RGB")
        base = describe(detector, net, np.asarray(image))
        if base is None:
            continue
        originals.append(base)
        for name, alter in ALTERATIONS.items():
            other = describe(detector, net, np.asarray(alter(image)))
            if other is not None:
                same[name].append(float((base - other).norm()))
    detector.close()
    descriptors = torch.stack(originals).double()
    d = torch.cdist(descriptors[None], descriptors[None])[0]
    i, j = torch.triu_indices(len(originals), len(originals), 1)
    different = d[i, j].numpy()
    all_same = np.concatenate([np.array(v) for v in same.values()])
    print(f"{len(originals)} portraits described (of {len(files)})")
    print(summary("different", different))
    for name, values in same.items():
        print(summary(name, np.array(values)))
    print(summary("same (all)", all_same))
    for t in (0.5, 0.55, SAME_MAX, 0.65, 0.7, DIFFERENT_MIN, 0.8, 0.85):
        print(f"threshold {t:.2f}: different pairs at or above {np.mean(different >= t):7.2%}, "
              f"same pairs at or above {np.mean(all_same >= t):7.2%}")
    print(f"in use: same below {SAME_MAX}, clearly different from {DIFFERENT_MIN}: "
          f"{np.mean(different >= DIFFERENT_MIN):.2%} of different-people pairs stopped, "
          f"{np.mean((different >= SAME_MAX) & (different < DIFFERENT_MIN)):.2%} noted, "
          f"{np.mean(different < SAME_MAX):.2%} pass silently")


if __name__ == "__main__":
    main()
