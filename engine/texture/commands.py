"""The texture model's commands: `texture-data build` and `texture-model build`.

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


def run_model(args: argparse.Namespace, progress: object) -> int:
    from engine.texture.asset import build_model_file

    del progress
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
