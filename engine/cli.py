"""Command line: `python -m engine reconstruct|assets ...` (contract in DESIGN.md).

Exit codes: 0 success, 2 bad usage or input, 3 no face, 4 missing asset, 5 anything
else (one line; the traceback only with --debug).
"""

import argparse
import sys
import time
import traceback
from pathlib import Path

from engine import __version__
from engine.errors import BadInputError, EngineError
from engine.paths import ganfit_home
from engine.progress import Progress


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as BadInputError (exit 2) like everything else."""

    def error(self, message: str):
        raise BadInputError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"engine {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    rec = commands.add_parser("reconstruct", help="fit the face model to photo(s)")
    rec.add_argument("images", nargs="+", type=Path, help="photo(s) of one person")
    rec.add_argument("--out", type=Path, required=True, help="result folder to write")
    rec.add_argument("--quality", choices=("preview", "standard", "high"), default="standard")
    rec.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    rec.add_argument("--progress", choices=("jsonl",), default=None,
                     help="stream JSON-lines progress events on stdout")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--force", action="store_true", help="replace an existing --out folder")
    rec.add_argument("--landmarks", choices=("mediapipe", "fan"), default="mediapipe",
                     help="landmark detector")
    rec.add_argument("--identity", choices=("auto", "arcface", "dlib", "none"), default="auto",
                     help="face-recognition network for the identity losses")
    rec.add_argument("--debug", action="store_true", help="show tracebacks")

    assets = commands.add_parser("assets", help="install or list models")
    verbs = assets.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    fetch = verbs.add_parser("fetch", help="download (or --from PATH import) assets")
    fetch.add_argument("--from", dest="source", type=Path, default=None,
                       help="import from a local folder or archive instead of downloading")
    fetch.add_argument("--with", dest="extra", action="append", default=[], metavar="NAME",
                       help="also install NAME (e.g. arcface); with --from, only NAME")
    listing = verbs.add_parser("list", help="show installed assets")
    listing.add_argument("--check", metavar="NAME", default=None,
                         help="exit 0 if NAME is installed, 4 if not")
    return parser


def _assets_fetch(args: argparse.Namespace) -> int:
    from engine.assets.registry import ASSETS, DEFAULT

    unknown = [n for n in args.extra if n not in ASSETS]
    if unknown:
        raise BadInputError(f"unknown asset {unknown[0]!r}; known: {', '.join(ASSETS)}")
    names = list(args.extra) if (args.source and args.extra) else [*DEFAULT, *args.extra]
    for name in dict.fromkeys(names):
        path = ASSETS[name][0](args.source, ganfit_home(), _log)
        _log(f"{name}: installed in {path}")
    return 0


def _assets_list(args: argparse.Namespace) -> int:
    from engine.assets.registry import ASSETS

    if args.check is not None:
        if args.check not in ASSETS:
            raise BadInputError(f"unknown asset {args.check!r}")
        return 0 if ASSETS[args.check][1](ganfit_home())["installed"] else 4
    print(f"asset cache: {ganfit_home()}")
    for name, (_, status) in ASSETS.items():
        info = status(ganfit_home())
        state = "installed" if info["installed"] else "missing"
        print(f"{name:24s} {state:10s} {info['detail']}" + (
            f"\n{'':24s} {info['path']}" if info["installed"] and info["path"] else ""))
    return 0


def _reconstruct(args: argparse.Namespace, progress: Progress) -> int:
    from engine.pipeline import ReconstructOptions, reconstruct

    start = time.perf_counter()
    options = ReconstructOptions(
        quality=args.quality, device=args.device, seed=args.seed, force=args.force,
        landmarks=args.landmarks, identity=args.identity)
    result = reconstruct(args.images, args.out, options, progress=progress, log=_log)
    progress.emit("done", result=str(result), seconds=round(time.perf_counter() - start, 2))
    _log(f"wrote {result}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    progress = Progress(enabled="jsonl" in argv and "--progress" in argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "assets":
            return _assets_fetch(args) if args.verb == "fetch" else _assets_list(args)
        return _reconstruct(args, progress)
    except EngineError as error:
        if debug:
            traceback.print_exc()
        progress.emit("error", code=error.code, message=str(error))
        _log(f"error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        progress.emit("error", code="INTERNAL", message="cancelled")
        _log("cancelled")
        return 5
    except Exception as error:  # the documented exit 5: one line, traceback under --debug
        if debug:
            traceback.print_exc()
        message = f"internal error: {type(error).__name__}: {error}"
        progress.emit("error", code="INTERNAL", message=message)
        _log(message + ("" if debug else " (run with --debug for details)"))
        return 5
