"""Run the engine as a subprocess without ever blocking the caller; no bpy.

Blender's main thread polls (`EngineProcess.read_lines`, `ReconstructJob.poll`) from a
timer; reader threads move stdout lines into a queue and keep the last stderr lines.
The engine runs in its own process group (POSIX session) so Cancel stops it and anything
it started, and an exit hook kills whatever is still running when Blender quits.

Which Python runs the engine (`find_engine_python`), first match wins:
1. the path set in the add-on preferences;
2. the environment variable GANFIT_ENGINE_PYTHON;
3. the `.venv` of a source checkout the add-on runs from (<checkout>/.venv/bin/python,
   or .venv/Scripts/python.exe on Windows).
Which engine source it runs (`find_engine_source`): the copy bundled in the add-on
(<add-on>/engine_src/engine), else the checkout's engine/ next to the add-on package.
"""

import atexit
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .protocol import DoneEvent, ProgressState, failure_message, parse_event, reconstruct_command

ENV_PYTHON = "GANFIT_ENGINE_PYTHON"
BUNDLED_SOURCE = "engine_src"
STDERR_LINES = 40
# After the engine exits, how long its stdout may stay open (held by a child it left
# behind) before the rest of its process group is killed.
DRAIN_GRACE_S = 2.0

_LIVE: "weakref.WeakSet[EngineProcess]" = weakref.WeakSet()


class EngineSetupError(RuntimeError):
    """The engine cannot be started (no Python, no source); the message says what to set."""


@dataclass(frozen=True)
class EnginePython:
    """The interpreter that runs the engine and where the rule found it."""

    path: Path
    origin: str


def _venv_python(root: Path) -> Path:
    if os.name == "nt":
        return root / ".venv" / "Scripts" / "python.exe"
    return root / ".venv" / "bin" / "python"


def find_engine_source(addon_dir: Path) -> Path:
    """The folder to put on PYTHONPATH so that `-m engine` finds the engine package."""
    for candidate in (addon_dir / BUNDLED_SOURCE, addon_dir.parent):
        if (candidate / "engine" / "__main__.py").is_file():
            return candidate
    raise EngineSetupError(
        f"The engine source is missing from {addon_dir}; reinstall the add-on")


def find_engine_python(preference: str, addon_dir: Path,
                       environ: Mapping[str, str] = os.environ) -> EnginePython:
    """The engine's Python by the rule in this module's docstring."""
    candidates = []
    if preference.strip():
        candidates.append((Path(preference.strip()).expanduser(), "add-on preferences"))
    if environ.get(ENV_PYTHON, "").strip():
        candidates.append((Path(environ[ENV_PYTHON].strip()).expanduser(), ENV_PYTHON))
    for path, origin in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return EnginePython(path, origin)
        raise EngineSetupError(f"The engine Python set in {origin} does not exist or is "
                               f"not executable: {path}")
    checkout = _venv_python(addon_dir.parent)
    if (addon_dir.parent / "engine").is_dir() and checkout.is_file():
        return EnginePython(checkout, "source checkout")
    raise EngineSetupError(
        "No Python for the engine: set it in the add-on preferences "
        f"(or the environment variable {ENV_PYTHON})")


# What the engine must not inherit from Blender: Blender's own Python settings, and the
# display (a headless engine with a display loads Mesa GL through MediaPipe and crashes
# in torch; engine/__main__.py drops it too, for callers other than this add-on).
UNINHERITED = ("PYTHONHOME", "PYTHONSTARTUP", "DISPLAY", "WAYLAND_DISPLAY")


def engine_environment(source: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The engine's environment: the engine source first on PYTHONPATH, unbuffered
    UTF-8 output, and none of the UNINHERITED variables."""
    env = {k: v for k, v in environ.items() if k not in UNINHERITED}
    paths = [str(source)] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class EngineProcess:
    """One engine subprocess with non-blocking access to its output.

    stdout lines go through a queue (`read_lines`), the last stderr lines are kept
    (`stderr_tail`); `finished` turns true once the process has exited and its stdout has
    been read to the end, so no event is lost.
    """

    def __init__(self, command: Sequence[str], cwd: Path, env: Mapping[str, str]):
        kwargs: dict = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True
        try:
            self._popen = subprocess.Popen(
                list(command), cwd=str(cwd), env=dict(env), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                encoding="utf-8", errors="replace", bufsize=1, **kwargs)
        except OSError as error:
            raise EngineSetupError(f"Cannot start the engine ({command[0]}): "
                                   f"{error.strerror or error}") from None
        self.pid = self._popen.pid
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._exited_at: float | None = None
        self._out = threading.Thread(target=self._pump, args=(self._popen.stdout, self._lines.put),
                                     daemon=True)
        self._err = threading.Thread(target=self._pump, args=(self._popen.stderr,
                                                              self._stderr.append), daemon=True)
        self._out.start()
        self._err.start()
        _LIVE.add(self)

    @staticmethod
    def _pump(stream, sink) -> None:
        with stream:
            for line in stream:
                sink(line.rstrip("\r\n"))

    def read_lines(self) -> list[str]:
        """Every stdout line that arrived since the last call; never blocks."""
        lines = []
        while True:
            try:
                lines.append(self._lines.get_nowait())
            except queue.Empty:
                return lines

    def stderr_tail(self) -> list[str]:
        return list(self._stderr)

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    @property
    def finished(self) -> bool:
        """Exited and fully read. A child holding stdout open past DRAIN_GRACE_S after the
        engine exited is killed with the rest of the process group."""
        if self._popen.poll() is None:
            return False
        if self._exited_at is None:
            self._exited_at = time.monotonic()
        if self._out.is_alive() and time.monotonic() - self._exited_at > DRAIN_GRACE_S:
            self._signal_group(hard=True)
            self._out.join(0.5)
        if self._out.is_alive():
            return False
        self._err.join(0.5)
        _LIVE.discard(self)
        return True

    def _signal_group(self, hard: bool) -> None:
        """SIGTERM (or SIGKILL when hard) to the engine's process group; on Windows the
        engine process itself is terminated."""
        try:
            if os.name == "nt":
                self._popen.kill()
            else:
                os.killpg(self.pid, signal.SIGKILL if hard else signal.SIGTERM)
        except OSError:  # already gone
            pass

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop the engine and its children now: SIGTERM, then SIGKILL after grace_s;
        reaps the process (waits at most about grace_s + 1 s)."""
        if self._popen.poll() is None:
            self._signal_group(hard=False)
            try:
                self._popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left in the group (the engine, or children it started) goes now.
        self._signal_group(hard=True)
        try:
            self._popen.wait(1.0)
        except subprocess.TimeoutExpired:
            pass
        self._out.join(0.5)
        self._err.join(0.5)
        _LIVE.discard(self)

    def wait(self, timeout_s: float | None = None, poll_s: float = 0.05) -> bool:
        """Block until `finished` (scripts and headless use); False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.finished:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(poll_s)
        return True


@atexit.register
def _stop_all() -> None:
    """Blender is quitting: no engine may outlive it."""
    for process in list(_LIVE):
        process.stop(grace_s=0.5)


@dataclass(frozen=True)
class Outcome:
    """How a reconstruction ended: a result folder, or a message (and whether the artist
    cancelled, which is not an error)."""

    result_dir: Path | None
    message: str
    cancelled: bool = False


class ReconstructJob:
    """One reconstruction: a private temporary folder, the engine process, its progress.

    Make the job, put any photo copies it needs into `work_dir`, then `start`. Poll with
    `poll()` until it returns True, read `outcome`, and `cleanup()` when the result has
    been used (the folder and everything in it is deleted).
    """

    def __init__(self, python: Path, source: Path):
        self.python = python
        self.source = source
        self.work_dir = Path(tempfile.mkdtemp(prefix="ganfit-"))
        self.out_dir = self.work_dir / "result"
        self.state = ProgressState()
        self.process: EngineProcess | None = None
        self.outcome: Outcome | None = None

    def start(self, images: Sequence[Path], quality: str, device: str,
              environ: Mapping[str, str] = os.environ) -> None:
        command = reconstruct_command(str(self.python), images, self.out_dir, quality, device)
        self.process = EngineProcess(command, cwd=self.source,
                                     env=engine_environment(self.source, environ))

    def poll(self) -> bool:
        """Take in new events; True once the job has ended (see `outcome`)."""
        if self.outcome is not None:
            return True
        if self.process is None:
            raise RuntimeError("poll() before start()")
        finished = self.process.finished  # read before draining: no line may slip by
        for line in self.process.read_lines():
            event = parse_event(line)
            if event is not None:
                self.state.apply(event)
        if finished:
            self.outcome = self._conclude()
        return finished

    def _conclude(self) -> Outcome:
        assert self.process is not None
        code = self.process.returncode
        done = self.state.done
        if code == 0 and isinstance(done, DoneEvent) and self.state.error is None:
            folder = Path(done.result)
            folder = folder.parent if folder.suffix == ".json" else folder
            if not folder.is_absolute():
                folder = self.source / folder
            if (folder / "result.json").is_file():
                return Outcome(folder, f"Reconstructed in {done.seconds:.1f} s")
        return Outcome(None, failure_message(code, self.state.error,
                                             self.process.stderr_tail(), self.state.stage))

    def wait(self, poll_s: float = 0.05) -> Outcome:
        """Block until the job ends (headless use, where timers never fire)."""
        while not self.poll():
            time.sleep(poll_s)
        assert self.outcome is not None
        return self.outcome

    def cancel(self) -> None:
        """Stop the engine at once; the outcome says cancelled."""
        if self.process is not None:
            self.process.stop()
        if self.outcome is None:
            self.outcome = Outcome(None, "Cancelled", cancelled=True)

    def cleanup(self) -> None:
        """Stop the engine if it still runs and delete the temporary folder."""
        if self.process is not None and self.process.returncode is None:
            self.process.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)
