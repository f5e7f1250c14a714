"""Are several photos of one person? dlib's face descriptors of the photos compared.

Several photos share one identity in the fit, so photos of different people would be
merged into a face that is nobody's. Each photo's face is aligned from its 68 landmarks
to dlib's 150 px chip and described by dlib's face-recognition ResNet (CC0 weights,
always installed); pairs are judged by the Euclidean distance between the raw
128-D descriptors, the measure dlib's network was trained for (dlib: under 0.6 is the
same person, 99.38% on LFW).

Calibrated with benchmarks/same_person_calibration.py (2026-12-01, first 118 congress
portraits): the 6903 pairs of different people lie at 0.53-1.16 (p1 0.62, p5 0.68,
median 0.84); 708 altered copies of the same portraits (mirrored, cropped to a third,
darkened, blurred, JPEG quality 15, rotated) at 0.02-0.41 (p99 0.30). With the thresholds
below, 81.5% of the different-people pairs stop the run, 18.0% get a note, 0.5% pass
silently, and no altered copy gets a note. Altered copies are easier than two real photos
of one person (another day, age, light, pose), so "clearly different" starts well above
dlib's own 0.6 to keep real same-person pairs from being refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import BadInputError, MissingAssetError
from engine.identity.align import DLIB_TEMPLATE, align_chips
from engine.identity.dlib_resnet import DlibResNet, load_dlib_resnet

# Distances below SAME_MAX: the same person, nothing said. From DIFFERENT_MIN on: clearly
# different people (exit 2 unless the user insists). In between: a note in result.json.
SAME_MAX = 0.6
DIFFERENT_MIN = 0.75


@dataclass(frozen=True)
class PairJudgement:
    """Two photos (indices into the input list), their descriptor distance and the verdict
    ("same", "borderline" or "different")."""

    first: int
    second: int
    distance: float
    verdict: str


def face_descriptors(net: DlibResNet, images: list[np.ndarray],
                     landmarks: list[np.ndarray]) -> torch.Tensor:
    """images: N photos (H_i, W_i, 3) uint8; landmarks: N (68, 2) pixels (iBUG order) ->
    (N, 128) raw dlib descriptors (float32, on the network's device)."""
    device = next(net.parameters()).device
    out = []
    with torch.no_grad():
        for image, points in zip(images, landmarks, strict=True):
            pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device)
            photo = pixels.permute(2, 0, 1)[None].float() / 255.0
            lm = torch.as_tensor(points, dtype=torch.float32, device=device)[None]
            out.append(net.descriptor(align_chips(photo, lm, DLIB_TEMPLATE))[0])
    return torch.stack(out)


def verdict(distance: float) -> str:
    if distance < SAME_MAX:
        return "same"
    return "borderline" if distance < DIFFERENT_MIN else "different"


def judge_pairs(descriptors: torch.Tensor) -> list[PairJudgement]:
    """descriptors (N, 128) -> every pair i < j with its distance and verdict."""
    distances = torch.cdist(descriptors[None].double(), descriptors[None].double())[0]
    n = descriptors.shape[0]
    return [PairJudgement(i, j, float(distances[i, j]), verdict(float(distances[i, j])))
            for i in range(n) for j in range(i + 1, n)]


def same_person_notes(pairs: list[PairJudgement], names: list[str],
                      allow_different: bool) -> dict[int, list[str]]:
    """Notes for result.json per photo index about the pairs that are not clearly one person.

    Raises BadInputError (exit 2) naming the photos when a pair is clearly of different
    people, unless `allow_different` (then that becomes a note too).
    """
    different = [p for p in pairs if p.verdict == "different"]
    if different and not allow_different:
        listed = "; ".join(f"{names[p.first]} and {names[p.second]} (face distance "
                           f"{p.distance:.2f})" for p in different)
        raise BadInputError(
            f"the photos look like different people: {listed}. Photos of one person share "
            "one face in the fit; remove the others, or pass --allow-different-people to fit "
            "them together anyway")
    notes: dict[int, list[str]] = {}
    for p in pairs:
        if p.verdict == "same":
            continue
        what = "looks like a different person than" if p.verdict == "different" \
            else "may not be the same person as"
        for i, j in ((p.first, p.second), (p.second, p.first)):
            notes.setdefault(i, []).append(
                f"{what} {names[j]} (face distance {p.distance:.2f}; the same person is "
                f"usually under {SAME_MAX}): the shared identity may fit neither well")
    return notes


def compare_photos(images: list[np.ndarray], landmarks: list[np.ndarray], names: list[str],
                   allow_different: bool, log: Callable[[str], None]) -> dict[int, list[str]]:
    """The check the pipeline runs on several photos (images (H_i, W_i, 3) uint8 and their
    (68, 2) landmarks): notes per photo index, or BadInputError for different people (see
    `same_person_notes`). Without dlib's network installed nothing can be compared: a
    note says so. Takes about 0.1 s per photo on one CPU core."""
    if len(images) < 2:
        return {}
    try:
        net = load_dlib_resnet("cpu")
    except MissingAssetError as error:
        log(f"photos not compared: {error}")
        return {0: [f"the photos were not checked to show one person ({error})"]}
    pairs = judge_pairs(face_descriptors(net, images, landmarks))
    for p in pairs:
        log(f"{names[p.first]} vs {names[p.second]}: face distance {p.distance:.2f} "
            f"({p.verdict})")
    return same_person_notes(pairs, names, allow_different)
