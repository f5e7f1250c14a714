"""The engine runs the add-on started: one reconstruction and one assets command at a
time, polled from `bpy.app.timers` so Blender's main thread never waits.

Without an event loop (the bpy module, background scripts) timers never fire: there the
operators' `wait` option blocks instead, and tests may call `tick()` themselves.

A running job's progress lives here, in Python, and the panel reads it from `current_job`:
setting a Blender property on every tick would make Blender redraw the whole window
(every property update sends a window notifier), and in a live window redrawing the
3D view ten times a second took CPU from the engine and the main loop alike. During a
job only the sidebars are redrawn, and only when what they show has changed.
"""

from dataclasses import dataclass, field
from pathlib import Path

import bpy

from . import bl_scene
from .process import EngineProcess, ReconstructJob, engine_environment
from .protocol import assets_command, failure_message
from .result import ResultError, load_result, notes_message

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
_shown: tuple[float, str] | None = None  # the progress the sidebars last drew
_assets_process: EngineProcess | None = None
assets = AssetsState()


def current_job() -> ReconstructJob | None:
    return _job


def running() -> bool:
    return _job is not None


def _status() -> bpy.types.PropertyGroup | None:
    wm = bpy.context.window_manager
    return getattr(wm, "ganfit_status", None) if wm is not None else None


def _redraw(area_type: str, region_type: str) -> None:
    """Tag one kind of region for redraw in every window (not their whole areas)."""
    wm = bpy.context.window_manager
    for window in wm.windows if wm is not None else ():
        for area in window.screen.areas:
            if area.type == area_type:
                for region in area.regions:
                    if region.type == region_type:
                        region.tag_redraw()


def redraw_sidebars() -> None:
    """Redraw the 3D views' sidebars, where the panel shows the job."""
    _redraw("VIEW_3D", "UI")


def _redraw_preferences() -> None:
    _redraw("PREFERENCES", "WINDOW")


def show_report(report: Report) -> None:
    """The panel's message (a window-manager property: set only when a job starts or ends)."""
    status = _status()
    if status is not None:
        status.level, status.message = report.level, report.message


def track(job: ReconstructJob, request: Request) -> None:
    """Take over a started job: poll it from a timer until it ends."""
    global _job, _request, _shown
    _job, _request, _shown = job, request, None
    show_report(Report("INFO", ""))
    redraw_sidebars()
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
            bl_scene.select_only(_view_layer(scene), head)
        except (ResultError, ValueError, OSError, RuntimeError) as error:
            return Report("ERROR", f"Could not build the head: {error}")
        notes = notes_message(result)
        if notes:
            return Report("WARNING", f"{outcome.message}: {head.name}. {notes}", head.name)
        return Report("INFO", f"{outcome.message}: {head.name}", head.name)
    finally:
        job.cleanup()


def _view_layer(scene: bpy.types.Scene) -> bpy.types.ViewLayer:
    """The view layer the artist sees the scene in: a window's showing it, else the
    context's (timers have no window), else the scene's first."""
    for window in bpy.context.window_manager.windows:
        if window.scene == scene:
            return window.view_layer
    layer = bpy.context.view_layer
    return layer if layer is not None and bpy.context.scene == scene else scene.view_layers[0]


def _notify(report: Report) -> None:
    """Put a report in the status bar from outside an operator: the report operator
    runs modally in a window (only a modal operator's reports reach the status bar
    when called from a script); without a window the message is printed."""
    wm = bpy.context.window_manager
    window = wm.windows[0] if wm is not None and len(wm.windows) else None
    if window is None:
        print(f"Face reconstruction: {report.message}")
        return
    try:
        area = next((a for a in window.screen.areas if a.type == "VIEW_3D"), None)
        with bpy.context.temp_override(window=window, screen=window.screen, area=area):
            bpy.ops.ganfit.report("INVOKE_DEFAULT", level=report.level, message=report.message)
    except RuntimeError:  # the window is closing
        print(f"Face reconstruction: {report.message}")


def tick() -> float | None:
    """Timer: take in the engine's progress; finish the job when it ends."""
    global _job, _request, _shown
    job, request = _job, _request
    if job is None or request is None:
        return None
    if not job.poll():
        shown = (round(job.state.fraction, 3), job.state.label)
        if shown != _shown:
            _shown = shown
            redraw_sidebars()
        return TICK_S
    _job = _request = None
    report = conclude(job, request)
    show_report(report)
    redraw_sidebars()
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
    show_report(report)
    redraw_sidebars()
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
        _redraw_preferences()
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
    _redraw_preferences()
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
