"""The texture model's training data: `texture-data build PHOTOS_DIR --out DIR`.

For each photo, a fast fit (detection + the landmark stage with few steps, no photometric
stage) and the de-lit skin albedo unwrapped at the model's atlas size with its confidence
(`observe.py`); written as DIR/<photo stem>.npz (albedo uint8 (T, 2T, 3), confidence uint8
(T, 2T), expression float32 (E,)). Resumable: photos already written or listed in
DIR/skipped.tsv (no usable face, unreadable) are not redone. Runs in worker processes
(one torch thread each) with a progress bar on stderr.
"""

from __future__ import annotations

# torch is imported inside the functions that fit: the CLI imports this module to build its
# parser, and `python -m engine` must answer bad usage without loading torch.
import hashlib
import json
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import BadInputError, EngineError

FIT_STEPS = 100
ATLAS_HEIGHT = 128  # the model's atlas is (128, 256)
WORK_MAX_SIDE = 640
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
HELD_OUT_EVERY = 10  # one photo in ten (by a hash of its name) is kept out of the model
SPLITS = ("all", "train", "held-out")


@dataclass
class Sample:
    """One photo's training sample. albedo (3, T, 2T) in [0, 1]; confidence (T, 2T);
    expression (E,)."""

    albedo: np.ndarray
    confidence: np.ndarray
    expression: np.ndarray


def is_held_out(name: str) -> bool:
    """A fixed split by file stem: held-out photos never go into a model."""
    digest = hashlib.sha256(Path(name).stem.encode()).digest()
    return digest[0] % HELD_OUT_EVERY == 0


def list_photos(folder: Path, split: str = "all", limit: int | None = None) -> list[Path]:
    """Photos in `folder` (sorted by name) of a split, at most `limit` of them."""
    if not folder.is_dir():
        raise BadInputError(f"{folder} is not a folder of photos")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if split != "all":
        photos = [p for p in photos if is_held_out(p.name) == (split == "held-out")]
    return photos[:limit]


def fit_sample(model, detector, path: Path, steps: int = FIT_STEPS,
               height: int = ATLAS_HEIGHT) -> Sample:
    """Detect, fit the landmark stage and unwrap one photo; NoFaceError / BadInputError."""
    import torch

    from engine.fit.fitter import initial_state
    from engine.fit.landmark_stage import fit_landmarks
    from engine.imageio import load_photo, working_image
    from engine.landmarks import select_face
    from engine.texture.observe import observe_albedo

    work, _ = working_image(load_photo(path), WORK_MAX_SIDE)
    face, _ = select_face(detector.detect(work), (work.shape[1], work.shape[0]),
                          scale_to_original=1.0, source=path.name)
    device = model.neutral.device
    landmarks = torch.tensor(face.landmarks68[None], dtype=torch.float32, device=device)
    # Texture data wants the face registered to the photo's points as closely as they go
    # (the default, tight landmark noise), not the reconstruction's looser noise model that
    # keeps the detector's bias out of the shape: measured, training samples from the looser
    # fit gave a model whose neck and scalp came out red-brown (astronaut neck texels far
    # from the cheek colour 49% instead of under 15%).
    state = initial_state(model, [work], device)
    fit_landmarks(model, landmarks, state, steps)
    photo = torch.from_numpy(np.array(work)).to(device).permute(2, 0, 1).float() / 255
    seen = observe_albedo(model, photo, state.identity, state.expression[0], state.camera(),
                          height)
    return Sample(seen.albedo.cpu().numpy(), seen.confidence.cpu().numpy(),
                  state.expression[0].cpu().numpy())


def save_sample(path: Path, sample: Sample) -> None:
    """Write atomically (a crash never leaves a sample that looks whole)."""
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(
        partial,
        albedo=(sample.albedo.transpose(1, 2, 0) * 255).round().astype(np.uint8),
        confidence=(sample.confidence * 255).round().astype(np.uint8),
        expression=sample.expression.astype(np.float32))
    partial.rename(path)


def load_sample(path: Path) -> Sample:
    with np.load(path) as data:
        return Sample(data["albedo"].transpose(2, 0, 1).astype(np.float32) / 255,
                      data["confidence"].astype(np.float32) / 255, data["expression"])


def sample_paths(folder: Path) -> list[Path]:
    """The finished samples of a data folder, sorted."""
    return sorted(p for p in folder.glob("*.npz") if not p.name.endswith(".partial.npz"))


_WORKER: dict = {}


def _start_worker(steps: int, height: int) -> None:
    import torch

    torch.set_num_threads(1)
    from engine.facemodel import load_face_model
    from engine.landmarks import get_detector

    _WORKER.update(model=load_face_model("cpu"), detector=get_detector("mediapipe"),
                   steps=steps, height=height)


def _work(path: Path) -> tuple[Path, Sample | None, str]:
    try:
        sample = fit_sample(_WORKER["model"], _WORKER["detector"], path, _WORKER["steps"],
                            _WORKER["height"])
        return path, sample, ""
    except EngineError as error:  # no face, unreadable photo: listed, not fatal
        return path, None, str(error).splitlines()[0]


def _results(todo: list[Path], workers: int, steps: int,
             height: int) -> Iterator[tuple[Path, Sample | None, str]]:
    if workers <= 1:
        _start_worker(steps, height)
        yield from map(_work, todo)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start_worker, initargs=(steps, height)) as pool:
        yield from pool.imap_unordered(_work, todo)


def _progress_bar(done: int, total: int, start: float) -> None:
    """A redrawn bar on a terminal; in a log (not a terminal) a line per tenth of the way."""
    width = 30
    filled = int(width * done / max(total, 1))
    rate = done / max(time.perf_counter() - start, 1e-6)
    bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {rate:.2f} photos/s"
    if sys.stderr.isatty():
        print("\r" + bar, end="" if done < total else "\n", file=sys.stderr, flush=True)
    elif done == total or done % max(total // 10, 1) == 0:
        print(bar, file=sys.stderr, flush=True)


def build_dataset(photos: list[Path], out: Path, workers: int = 2, steps: int = FIT_STEPS,
                  height: int = ATLAS_HEIGHT, log: Callable[[str], None] = print) -> dict:
    """Write a sample per photo into `out` (resuming); returns the summary written to
    out/manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    skipped_file = out / "skipped.tsv"
    skipped = dict(line.split("\t", 1) for line in skipped_file.read_text().splitlines()
                   if "\t" in line) if skipped_file.exists() else {}
    todo = [p for p in photos if p.name not in skipped and not (out / f"{p.stem}.npz").exists()]
    log(f"texture-data: {len(photos) - len(todo)} of {len(photos)} photos already done; "
        f"fitting {len(todo)} with {workers} worker(s)")
    start = time.perf_counter()
    for done, (path, sample, reason) in enumerate(_results(todo, workers, steps, height), 1):
        if sample is None:
            skipped[path.name] = reason
            with skipped_file.open("a") as handle:
                handle.write(f"{path.name}\t{reason}\n")
        else:
            save_sample(out / f"{path.stem}.npz", sample)
        _progress_bar(done, len(todo), start)
    summary = {"atlas": [height, 2 * height], "fit_steps": steps,
               "samples": len(sample_paths(out)), "skipped": sorted(skipped),
               "seconds": round(time.perf_counter() - start, 1)}
    (out / "manifest.json").write_text(json.dumps(summary, indent=1))
    for name in sorted(skipped):
        log(f"texture-data: skipped {name}: {skipped[name]}")
    return summary
