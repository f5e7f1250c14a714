"""Command line: `python -m engine reconstruct|assets ...` (contract in DESIGN.md).

Exit codes: 0 success, 2 bad usage or input, 3 no face, 4 missing asset, 5 anything
else (one line; the traceback only with --debug). SIGINT, SIGTERM and SIGHUP cancel a run
(exit 5 "cancelled", an error event, temp folders removed), and so does a reader closing
the progress stream.

Each command is one `Command` in COMMANDS: its arguments and its handler side by side.
"""

import argparse
import contextlib
import signal
import sys
import threading
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine import __version__, publish
from engine.errors import BadInputError, Cancelled, EngineError, MissingAssetError
from engine.paths import ganfit_home
from engine.progress import Progress, silence
from engine.texture import commands as texture

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
TEXTURE_MODELS = ("auto", "pca", "none")  # `reconstruct --texture-model`, or a checkpoint


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as BadInputError (exit 2) like everything else."""

    def error(self, message: str):
        raise BadInputError(f"{self.prog}: {message}")


@dataclass(frozen=True)
class Command:
    """A subcommand: `arguments` adds its options to its parser; `run` does it (exit code)."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Progress], int]


# ----------------------------------------------------------------------------- reconstruct


def _reconstruct_arguments(rec: argparse.ArgumentParser) -> None:
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
    rec.add_argument("--allow-different-people", action="store_true",
                     help="fit several photos together even when they look like different "
                          "people")
    rec.add_argument("--maps-size", type=int, choices=(0, 1024, 2048, 4096), default=2048,
                     help="width of the normal, roughness and AO maps (0: none)")
    rec.add_argument("--texture-model", default="auto", metavar="auto|pca|none|PATH",
                     help="what completes the texture: auto (texture-pca when installed, "
                          "else the photo unwrap), pca, none (the photo unwrap) or a GAN "
                          "checkpoint.pt from `texture-model train`")
    rec.add_argument("--debug", action="store_true", help="show tracebacks")


def _check_texture_model(choice: str) -> None:
    """`--texture-model` checked before torch loads: pca must be installed; a path must be a
    readable torch checkpoint (a zip archive holding a pickled record); whether it is a GAN
    texture checkpoint is checked when it loads."""
    if choice == "pca":
        from engine.texture import asset

        state = asset.status(ganfit_home())
        if not state["installed"]:
            raise MissingAssetError(f"--texture-model pca: {state['detail']}")
    if choice in TEXTURE_MODELS:
        return
    expected = "auto, pca, none or a checkpoint.pt from `texture-model train`"
    if not Path(choice).is_file():
        raise BadInputError(f"--texture-model {choice}: not a file (expected {expected})")
    try:
        with zipfile.ZipFile(choice) as archive:
            pickled = any(name.endswith("data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile) as error:
        raise BadInputError(f"--texture-model {choice}: not a readable checkpoint "
                            f"({error})") from error
    if not pickled:
        raise BadInputError(f"--texture-model {choice}: not a torch checkpoint "
                            f"(expected {expected})")


def _reconstruct(args: argparse.Namespace, progress: Progress) -> int:
    from engine.imageio import load_photo
    from engine.result import check_destination

    start = time.perf_counter()
    # every input is checked before torch and the models load: bad input is answered at once
    check_destination(args.out, args.force)
    photos = [load_photo(p) for p in args.images]
    _check_texture_model(args.texture_model)
    from engine.pipeline import ReconstructOptions, reconstruct

    options = ReconstructOptions(
        quality=args.quality, device=args.device, seed=args.seed, force=args.force,
        landmarks=args.landmarks, identity=args.identity,
        allow_different_people=args.allow_different_people, maps_size=args.maps_size,
        texture_model=args.texture_model)
    result = reconstruct(photos, args.out, options, progress=progress, log=_log)
    with contextlib.suppress(Cancelled):  # the result is written: a late cancel changes nothing
        progress.emit("done", result=str(result), seconds=round(time.perf_counter() - start, 2))
    _log(f"wrote {result}")
    return 0


# ----------------------------------------------------------------------------- assets


def _assets_arguments(assets: argparse.ArgumentParser) -> None:
    verbs = assets.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    fetch = verbs.add_parser("fetch", help="download (or --from PATH import) assets")
    fetch.add_argument("--from", dest="source", type=Path, default=None,
                       help="import from a local folder or archive instead of downloading")
    fetch.add_argument("--with", dest="extra", action="append", default=[], metavar="NAME",
                       help="also install NAME (e.g. arcface); with --from, only NAME")
    listing = verbs.add_parser("list", help="show installed assets, their content verified")
    listing.add_argument("--check", metavar="NAME", nargs="?", const="", default=None,
                         help="exit 0 if NAME (default: every required asset) is installed "
                              "and intact, 4 if it is missing or damaged")


def _assets(args: argparse.Namespace, progress: Progress) -> int:
    del progress
    return _assets_fetch(args) if args.verb == "fetch" else _assets_list(args)


def _assets_fetch(args: argparse.Namespace) -> int:
    from engine.assets.registry import ASSETS, DEFAULT

    unknown = [n for n in args.extra if n not in ASSETS]
    if unknown:
        raise BadInputError(f"unknown asset {unknown[0]!r}; known: {', '.join(ASSETS)}")
    names = list(args.extra) if (args.source and args.extra) else [*DEFAULT, *args.extra]
    for name in dict.fromkeys(names):
        path = ASSETS[name].install(args.source, ganfit_home(), _log)
        _log(f"{name}: installed in {path}")
    return 0


def _assets_list(args: argparse.Namespace) -> int:
    from engine.assets.registry import ASSETS, DEFAULT, asset_status, status_line

    home = ganfit_home()
    if args.check is None:
        print(f"asset cache: {home}")
        for name in ASSETS:
            print(status_line(asset_status(name, home)))
        return 0
    names = [args.check] if args.check else list(DEFAULT)
    if args.check and args.check not in ASSETS:
        raise BadInputError(f"unknown asset {args.check!r}; known: {', '.join(ASSETS)}")
    statuses = [asset_status(name, home) for name in names]
    for info in statuses:
        print(status_line(info))
    bad = [info for info in statuses if info.state != "installed"]
    if bad:
        raise MissingAssetError("; ".join(f"{i.name} is {i.state}: {i.detail}" for i in bad))
    return 0


COMMANDS: tuple[Command, ...] = (
    Command("reconstruct", "fit the face model to photo(s)", _reconstruct_arguments,
            _reconstruct),
    Command("assets", "install or list models", _assets_arguments, _assets),
    Command("texture-data", "build the texture model's training data", texture.data_arguments,
            texture.run_data),
    Command("texture-model", "build the texture model", texture.model_arguments,
            texture.run_model),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"engine {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.arguments(commands.add_parser(command.name, help=command.help))
    return parser


# ----------------------------------------------------------------------------- running


def _ignore_stop_signals() -> None:
    """From now on stop signals do nothing, so a clean-up under way is not cut short."""
    if threading.current_thread() is threading.main_thread():
        for name in STOP_SIGNALS:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)


def _cancel(signum: int, frame: object) -> None:
    """Signal handler: stop the run like Ctrl-C (the clean-up then runs undisturbed)."""
    del frame
    _ignore_stop_signals()
    raise Cancelled(f"cancelled ({signal.Signals(signum).name})")


@contextlib.contextmanager
def _stop_signals_cancel() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP (where the OS has them) raise Cancelled while inside;
    the previous handlers come back afterwards (main() may run inside another program)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            number = getattr(signal, name)
            previous[number] = signal.signal(number, _cancel)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _fail(progress: Progress, code: str, event_message: str, line: str, debug: bool) -> None:
    """Report a failure: the traceback under --debug, an error event, one stderr line."""
    _ignore_stop_signals()
    if debug:
        traceback.print_exc()
    with contextlib.suppress(Cancelled):  # the stream may be the thing that closed
        progress.emit("error", code=code, message=event_message)
    _log(line)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    progress = Progress(enabled="jsonl" in argv and "--progress" in argv)
    with _stop_signals_cancel():
        try:
            args = build_parser().parse_args(argv)
            handler = next(c.run for c in COMMANDS if c.name == args.command)
            return handler(args, progress)
        except EngineError as error:
            _fail(progress, error.code, str(error), f"error: {error}", debug)
            return error.exit_code
        except (KeyboardInterrupt, Cancelled) as error:
            reason = str(error) or "cancelled"
            _fail(progress, Cancelled.code, "cancelled", reason, debug)
            return Cancelled.exit_code
        except BrokenPipeError:  # stdout's reader went away (`assets list | head -1`)
            progress.enabled = False
            silence(sys.stdout)
            _fail(progress, Cancelled.code, "cancelled",
                  "cancelled: stdout was closed by its reader", debug)
            return Cancelled.exit_code
        except Exception as error:  # the documented exit 5: one line, traceback under --debug
            message = f"internal error: {type(error).__name__}: {error}"
            _fail(progress, "INTERNAL", message,
                  message + ("" if debug else " (run with --debug for details)"), debug)
            return 5
        finally:
            publish.release_all()
