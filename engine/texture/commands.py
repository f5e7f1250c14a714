"""The texture model's commands: `texture-data build`, `texture-model build` (the linear
model) and `texture-model train` (the GAN model).

Kept light at import (the CLI imports this to build its parser); the work is imported when
a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import BadInputError


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def data_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.texture import dataset

    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=type(parser))
    build = verbs.add_parser("build", help="fit each photo and write its de-lit UV albedo, "
                                           "confidence mask and expression (resumable)")
    build.add_argument("photos", type=Path, help="a folder of face photos")
    build.add_argument("--out", type=Path, required=True, help="data folder (resumed if there)")
    build.add_argument("--split", choices=dataset.SPLITS, default="all",
                       help="which photos: all, or the fixed train / held-out split by name")
    build.add_argument("--limit", type=int, default=None, help="at most this many photos")
    build.add_argument("--workers", type=int, default=2, help="worker processes")
    build.add_argument("--steps", type=int, default=dataset.FIT_STEPS,
                       help="landmark-fit steps per photo")
    build.add_argument("--debug", action="store_true", help="show tracebacks")


def run_data(args: argparse.Namespace, progress: object) -> int:
    from engine.texture.dataset import build_dataset, list_photos

    del progress
    if args.workers < 1 or args.steps < 1 or (args.limit is not None and args.limit < 1):
        raise BadInputError("--workers, --steps and --limit must be positive")
    photos = list_photos(args.photos, args.split, args.limit)
    summary = build_dataset(photos, args.out, args.workers, args.steps, log=_log)
    _log(f"texture-data: {summary['samples']} samples in {args.out}, "
         f"{len(summary['skipped'])} photos skipped")
    return 0


def model_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=type(parser))
    build = verbs.add_parser("build", help="the linear texture model (EM-PCA) from a data "
                                           "folder of `texture-data build`")
    build.add_argument("data", type=Path, help="data folder")
    build.add_argument("--out", type=Path, required=True, help="model file to write (.npz)")
    build.add_argument("--components", type=int, default=48, help="principal components")
    build.add_argument("--force", action="store_true", help="replace an existing --out file")
    build.add_argument("--debug", action="store_true", help="show tracebacks")
    train = verbs.add_parser("train", help="train the GAN texture model on a data folder of "
                                           "`texture-data build` (resumable)")
    train.add_argument("data", type=Path, help="data folder")
    train.add_argument("--out", type=Path, required=True,
                       help="run folder: checkpoint.pt, stats.jsonl, sample grids")
    train.add_argument("--config", choices=("tiny", "small", "full"), default=None,
                       help="network size: tiny (16x32, tests), small (64x128, a short "
                            "GPU run), full (128x256, GPU; the default)")
    train.add_argument("--resolution", type=int, default=None,
                       help="atlas height T (the atlas is T x 2T), a power of two 8..256; "
                            "default: the config's")
    train.add_argument("--steps", type=int, default=20000,
                       help="total steps of the run (a resumed run stops at the same step)")
    train.add_argument("--batch", type=int, default=None, help="default: the config's")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint")
    train.add_argument("--sample-every", type=int, default=500,
                       help="write a sample grid every this many steps")
    train.add_argument("--checkpoint-every", type=int, default=1000,
                       help="write the checkpoint every this many steps")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--debug", action="store_true", help="show tracebacks")


def run_model(args: argparse.Namespace, progress: object) -> int:
    del progress
    if args.verb == "train":
        return run_train(args)
    from engine.texture.asset import build_model_file

    if not args.data.is_dir():
        raise BadInputError(f"{args.data} is not a data folder")
    if args.out.exists() and not args.force:
        raise BadInputError(f"{args.out} already exists; pass --force to replace it")
    if args.components < 1:
        raise BadInputError("--components must be positive")
    info = build_model_file(args.data, args.out, args.components,
                            {"source": str(args.data)})
    _log(f"texture-model: {info['components']} components from {info['photos']} samples "
         f"-> {args.out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Checks the arguments (those it can before torch loads), then trains
    (`engine.texture.train`)."""
    from engine.texture.dataset import sample_paths

    if not args.data.is_dir() or len(sample_paths(args.data)) < 2:
        raise BadInputError(f"{args.data} is not a data folder of `texture-data build` with "
                            "at least 2 samples")
    if min(args.steps, args.sample_every, args.checkpoint_every,
           1 if args.batch is None else args.batch) < 1:
        raise BadInputError("--steps, --batch, --sample-every and --checkpoint-every must "
                            "be positive")
    checkpoint = args.out / "checkpoint.pt"  # train.CHECKPOINT, named here without torch
    if args.resume and not checkpoint.is_file():
        raise BadInputError(f"--resume: no checkpoint at {checkpoint}")
    if args.resume and (args.config, args.resolution, args.batch) != (None, None, None):
        raise BadInputError("--resume continues with the checkpoint's settings: leave out "
                            "--config, --resolution and --batch")
    if not args.resume and checkpoint.exists():
        raise BadInputError(f"{args.out} holds a run; pass --resume to continue it")
    from engine.texture.gan import check_resolution, preset
    from engine.texture.train import RunSettings, train

    if args.resolution is not None and not check_resolution(args.resolution):
        raise BadInputError("--resolution must be a power of two from 8 to 256")
    config = preset(args.config or "full", args.resolution, args.batch)
    settings = RunSettings(steps=args.steps, seed=args.seed, device=args.device,
                           sample_every=args.sample_every,
                           checkpoint_every=args.checkpoint_every)
    path = train(args.data, args.out, config, settings, resume=args.resume, log=_log)
    _log(f"texture-model: GAN checkpoint -> {path}")
    return 0
