"""The engine's side of the conversation (DESIGN.md), as plain data; no bpy.

Command lines of `python -m engine ...`, the JSON-lines progress events on its stdout,
folding them into what the panel shows, and turning an exit status into one message.
"""

import json
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUALITIES = ("preview", "standard", "high")
DEVICES = ("auto", "cpu", "cuda")

# Stages in run order, with their label and an estimated share of the whole run (for one
# overall progress bar; the engine reports steps within a stage only).
STAGES: dict[str, tuple[str, float]] = {
    "detect": ("Detecting face", 0.05),
    "landmark_fit": ("Fitting landmarks", 0.15),
    "full_fit": ("Fitting the face", 0.60),
    "texture": ("Building texture", 0.15),
    "write": ("Writing result", 0.05),
}

# Exit codes (DESIGN.md) -> what the artist reads when the engine sent no error event.
EXIT_MESSAGES: dict[int, str] = {
    2: "The engine could not read the photo (not an image, or unreadable)",
    3: "No face was found in the photo",
    4: "A required model is missing: download it in the add-on preferences",
    5: "The engine failed",
}
MISSING_ASSET_HINT = " (add-on preferences: Download models)"


@dataclass(frozen=True)
class StageEvent:
    name: str


@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    step: int
    steps: int
    loss: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DoneEvent:
    result: str
    seconds: float


@dataclass(frozen=True)
class ErrorEvent:
    code: str
    message: str


Event = StageEvent | ProgressEvent | DoneEvent | ErrorEvent


def reconstruct_command(python: str, images: Sequence[str | Path], out_dir: str | Path,
                        quality: str, device: str) -> list[str]:
    """argv of one reconstruction with JSON-lines progress on stdout."""
    if not images:
        raise ValueError("at least one photo is needed")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES}, not {quality!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    return [python, "-m", "engine", "reconstruct", *(str(p) for p in images),
            "--out", str(out_dir), "--quality", quality, "--device", device,
            "--progress", "jsonl"]


def assets_command(python: str, verb: str) -> list[str]:
    """argv of `engine assets list` or `engine assets fetch`."""
    if verb not in ("list", "fetch"):
        raise ValueError(f"unknown assets verb {verb!r}")
    return [python, "-m", "engine", "assets", verb]


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError
    return kind(value)


def parse_event(line: str) -> Event | None:
    """One stdout line -> an event; None for blank lines, non-JSON noise, unknown events
    or events missing their fields (the add-on must survive a stray print)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
        kind = data.get("event")
        if kind == "stage":
            return StageEvent(name=str(data["name"]))
        if kind == "progress":
            loss = data.get("loss") or {}
            return ProgressEvent(
                stage=str(data["stage"]), step=_number(data["step"], int),
                steps=_number(data["steps"], int),
                loss={str(k): float(v) for k, v in loss.items()})
        if kind == "done":
            return DoneEvent(result=str(data["result"]),
                             seconds=_number(data.get("seconds", 0.0), float))
        if kind == "error":
            return ErrorEvent(code=str(data.get("code", "INTERNAL")),
                              message=str(data.get("message", "")).strip())
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def overall_fraction(stage: str, step: int, steps: int) -> float:
    """Progress of the whole run in [0, 1] from the current stage and its step."""
    done = 0.0
    for name, (_, share) in STAGES.items():
        if name == stage:
            within = min(max(step / steps, 0.0), 1.0) if steps > 0 else 0.0
            return min(done + share * within, 1.0)
        done += share
    return 0.0


@dataclass
class ProgressState:
    """What the panel shows, folded from the events seen so far."""

    stage: str = ""
    step: int = 0
    steps: int = 0
    fraction: float = 0.0
    done: DoneEvent | None = None
    error: ErrorEvent | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, StageEvent):
            self.stage, self.step, self.steps = event.name, 0, 0
        elif isinstance(event, ProgressEvent):
            self.stage, self.step, self.steps = event.stage, event.step, event.steps
        elif isinstance(event, DoneEvent):
            self.done = event
        elif isinstance(event, ErrorEvent):
            self.error = event
        if self.done is not None:
            self.fraction = 1.0
        elif self.stage:
            # Never move backwards: a stage's first event carries no step count.
            self.fraction = max(self.fraction,
                                overall_fraction(self.stage, self.step, self.steps))

    @property
    def label(self) -> str:
        """'Fitting the face 40/300' style text for the progress bar."""
        if not self.stage:
            return "Starting engine"
        name = STAGES.get(self.stage, (self.stage.replace("_", " ").capitalize(), 0.0))[0]
        return f"{name} {self.step}/{self.steps}" if self.steps else name


# stderr lines the engine's libraries write, never the engine's own words: absl/glog
# ("W0000 00:00:1733.1 5580 file.cc:114] ..."), TensorFlow Lite ("INFO: Created ...")
# and absl's "WARNING: All log messages before absl::InitializeLog() ...".
_LIBRARY_LINE = re.compile(r"^([IWEF]\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\]|(INFO|WARNING|ERROR): )")
# faulthandler's first line when the engine dies in native code (engine/__main__.py).
_FATAL = "Fatal Python error:"


def sentence(message: str) -> str:
    """The message with a capital first letter, unless it starts with a file name or a
    path (whose case is its own): "no face in A.png" -> "No face in A.png", but
    "photo.png: no face" stays."""
    first = message.split(maxsplit=1)[0].rstrip(":,;") if message.strip() else ""
    return message[0].upper() + message[1:] if first.isalpha() else message


def engine_line(stderr_tail: Sequence[str]) -> str:
    """The engine's own last words on stderr: faulthandler's fatal-error line after a
    crash, else the last line that is not a library's log line ("" if none)."""
    lines = [line.strip() for line in stderr_tail if line.strip()]
    fatal = next((line for line in reversed(lines) if line.startswith(_FATAL)), None)
    if fatal is not None:
        return fatal
    return next((line for line in reversed(lines) if not _LIBRARY_LINE.match(line)), "")


def _signal_name(number: int) -> str:
    """"signal 11 (SIGSEGV)"; the bare number for signals this system does not name."""
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"


def failure_message(returncode: int | None, error: ErrorEvent | None,
                    stderr_tail: Sequence[str] = (), stage: str = "") -> str:
    """One line for the artist about a run that did not produce a result.

    The engine's own error event wins (its message is written for users); otherwise the
    exit code (or signal, with the stage it stopped in) is explained and the engine's
    own last stderr line added as the detail; libraries' log lines are never used.
    """
    if error is not None and error.message:
        hint = MISSING_ASSET_HINT if error.code == "MISSING_ASSET" else ""
        return sentence(error.message) + hint
    detail = engine_line(stderr_tail)
    if returncode is None:
        base = "The engine did not finish"
    elif returncode < 0:
        base = f"The engine was stopped by {_signal_name(-returncode)}"
        if stage:
            base += f" while {STAGES.get(stage, (stage.replace('_', ' '), 0.0))[0].lower()}"
    elif returncode == 0:
        base = "The engine finished without writing a result"
    elif returncode in EXIT_MESSAGES:
        base = f"{EXIT_MESSAGES[returncode]} (exit code {returncode})"
    else:
        base = f"The engine stopped unexpectedly (exit code {returncode})"
    return f"{base}: {detail}" if detail else base
