"""The engine runs the add-on started: one reconstruction and one assets command at a
time, polled from `bpy.app.timers` so Blender's main thread never waits.

Without an event loop (the bpy module, background scripts) timers never fire: there the
operators' `wait` option blocks instead, and tests may call `tick()` themselves.
"""

from dataclasses import dataclass, field
from pathlib import Path

import bpy

from . import bl_scene
from .process import EngineProcess, ReconstructJob, engine_environment
from .protocol import assets_command, failure_message
from .result import ResultError, load_result

TICK_S = 0.1


@dataclass
class Request:
    """What to build once the engine is done: the object's name, the source that
    identifies the photo, the reference photo (an Image's name, or a path), options."""

    name: str
    source: str
    photo_image: str | None
    photo_path: str | None
    reference: bool
    on_existing: str
    scene: str


@dataclass
class Report:
    level: str  # 'INFO', 'WARNING' or 'ERROR'
    message: str
    head: str | None = None


@dataclass
class AssetsState:
    """What the preferences show about installed models."""

    lines: list[str] = field(default_factory=list)
    message: str = ""
    running: str = ""  # the verb of the command now running, or ""


_job: ReconstructJob | None = None
_request: Request | None = None
_assets_process: EngineProcess | None = None
assets = AssetsState()


def current_job() -> ReconstructJob | None:
    return _job


def running() -> bool:
    return _job is not None


def _status() -> bpy.types.PropertyGroup | None:
    wm = bpy.context.window_manager
    return getattr(wm, "ganfit_status", None) if wm is not None else None


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in wm.windows if wm is not None else ():
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES"}:
                area.tag_redraw()


def _show(job: ReconstructJob | None, report: Report | None = None) -> None:
    status = _status()
    if status is None:
        return
    status.running = job is not None and job.outcome is None
    if job is not None:
        status.fraction = job.state.fraction
        status.label = job.state.label
    if report is not None:
        status.level, status.message = report.level, report.message
    _redraw()


def track(job: ReconstructJob, request: Request) -> None:
    """Take over a started job: poll it from a timer until it ends."""
    global _job, _request
    _job, _request = job, request
    _show(job, Report("INFO", "Reconstructing"))
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_S)


def conclude(job: ReconstructJob, request: Request) -> Report:
    """Build the head from a finished job (or explain why not), then delete the job's
    temporary folder; the texture is packed into the .blend first."""
    outcome = job.outcome
    try:
        if outcome is None or outcome.result_dir is None:
            level = "INFO" if outcome is not None and outcome.cancelled else "ERROR"
            return Report(level, outcome.message if outcome else "The engine did not finish")
        try:
            result = load_result(outcome.result_dir)
            scene = bpy.data.scenes.get(request.scene) or bpy.context.scene
            photo = bpy.data.images.get(request.photo_image) if request.photo_image else None
            head = bl_scene.build_head(
                result, request.name, request.source, scene.collection,
                photo=photo or request.photo_path, reference=request.reference, pack=True,
                on_existing=request.on_existing)
        except (ResultError, ValueError, OSError, RuntimeError) as error:
            return Report("ERROR", f"Could not build the head: {error}")
        return Report("INFO", f"{outcome.message}: {head.name}", head.name)
    finally:
        job.cleanup()


def _notify(report: Report) -> None:
    """Put a report in the info bar from outside an operator."""
    try:
        bpy.ops.ganfit.report(level=report.level, message=report.message)
    except (RuntimeError, AttributeError):
        print(f"Face reconstruction: {report.message}")


def tick() -> float | None:
    """Timer: take in the engine's progress; finish the job when it ends."""
    global _job, _request
    job, request = _job, _request
    if job is None or request is None:
        return None
    if not job.poll():
        _show(job)
        return TICK_S
    _job = _request = None
    report = conclude(job, request)
    _show(None, report)
    _notify(report)
    return None


def cancel() -> Report | None:
    """Stop the running reconstruction at once; None if nothing ran."""
    global _job, _request
    job, request = _job, _request
    if job is None or request is None:
        return None
    _job = _request = None
    job.cancel()
    report = conclude(job, request)
    _show(None, report)
    return report


def start_assets(python: Path, source: Path, verb: str) -> None:
    """Run `engine assets list|fetch` in the background; `tick_assets` collects it."""
    global _assets_process
    if _assets_process is not None:
        raise RuntimeError(f"'engine assets {assets.running}' is still running")
    _assets_process = EngineProcess(assets_command(str(python), verb), cwd=source,
                                    env=engine_environment(source))
    assets.running, assets.message = verb, ("Downloading models" if verb == "fetch"
                                            else "Checking models")
    if not bpy.app.timers.is_registered(tick_assets):
        bpy.app.timers.register(tick_assets, first_interval=TICK_S)


def tick_assets() -> float | None:
    """Timer for the assets command; after a fetch, lists the assets again."""
    global _assets_process
    process = _assets_process
    if process is None:
        return None
    if not process.finished:
        tail = process.stderr_tail()
        if tail and assets.running == "fetch":
            assets.message = tail[-1]
        _redraw()
        return TICK_S
    _assets_process = None
    verb, assets.running = assets.running, ""
    code = process.returncode
    lines = process.read_lines()
    if verb == "list" and code == 0:
        assets.lines, assets.message = [ln for ln in lines if ln.strip()], ""
    elif code == 0:
        assets.message = "Models downloaded"
    else:
        assets.message = failure_message(code, None, process.stderr_tail())
    _redraw()
    return None


def wait_assets() -> None:
    """Blocking form of the assets timer (headless use)."""
    if _assets_process is not None:
        _assets_process.wait()
    tick_assets()


def shutdown() -> None:
    """Unregistering: stop every engine process and forget the jobs."""
    global _assets_process
    cancel()
    if _assets_process is not None:
        _assets_process.stop()
        _assets_process = None
    assets.running = ""
    for timer in (tick, tick_assets):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
