"""Runs inside a real Blender window (3.4+) and uses the add-on as an artist does; writes
what it saw to OUT/report.json and screenshots to OUT/*.png.

    blender --factory-startup --python blender_driver.py -- CONFIG.json

CONFIG: {"out": folder, "zip": legacy add-on zip, "python": the engine's Python,
"photo": a face photo, "no_face": a photo without a face, "scenario": "test" | "bench",
"bench_runs": ["sidebar", "whole_window", ...] and "result": a result folder (bench only)}.

Everything happens in the live event loop: one generator, resumed by a `bpy.app.timers`
timer, goes through the steps and yields how long to wait; a second timer counts the
main loop's ticks (its rate is the loop's responsiveness). The add-on is installed from
its zip with Preferences' own operator, the sidebar's Face tab opened with real key
presses (xdotool; Blender < 4.1 has no API for it), and the operators called with the
3D view's window, area and sidebar region as context, as a click on the button does.
"""

import json
import subprocess
import sys
import time
import traceback
from pathlib import Path

import bpy

ADDON = "ganfit_blender"
TICK_S = 0.05  # the loop-rate timer's interval: at most 20 ticks a second
CONFIG = json.loads(Path(sys.argv[sys.argv.index("--") + 1]).read_text())
OUT = Path(CONFIG["out"])
report: dict = {"blender": bpy.app.version_string, "steps": {}, "screenshots": {}}
ticks: list[float] = []
draws = {"panel": 0, "view": 0, "sidebar": 0}
panel_fractions: list[float] = []  # the progress the panel drew, in drawing order


def log(message: str) -> None:
    print(f"driver: {message}", flush=True)


def count_tick() -> float:
    ticks.append(time.monotonic())
    return TICK_S


def loop_rate(start: float, end: float) -> float:
    """Timer ticks per second between two moments (the main loop's rate, at most 20)."""
    inside = [t for t in ticks if start <= t <= end]
    return (len(inside) - 1) / (inside[-1] - inside[0]) if len(inside) > 1 else 0.0


def window_parts():
    """(window, 3D view area, its sidebar region, its main region)."""
    window = bpy.context.window_manager.windows[0]
    area = max((a for a in window.screen.areas if a.type == "VIEW_3D"),
               key=lambda a: a.width * a.height)
    regions = {r.type: r for r in area.regions}
    return window, area, regions["UI"], regions["WINDOW"]


def rect(region, window) -> list[int]:
    """[left, top, width, height] of a region in screen pixels (Xvfb: the window at 0,0)."""
    return [region.x, window.height - region.y - region.height, region.width, region.height]


def screenshot(name: str) -> None:
    """The whole X screen, as the artist sees it (imagemagick's import)."""
    path = OUT / f"{name}.png"
    subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=60)
    report["screenshots"][name] = str(path)
    log(f"screenshot {path.name}")


def xdotool(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, timeout=20)


def call(operator, in_view: bool = False, **props):
    """Call an operator as a click in the sidebar (or the 3D view, in_view) does: window,
    area and region in context."""
    window, area, sidebar, view = window_parts()
    with bpy.context.temp_override(window=window, screen=window.screen, area=area,
                                   region=view if in_view else sidebar):
        return operator("INVOKE_DEFAULT", **props)


def addon():
    return sys.modules[ADDON]


def wait_until(condition, timeout_s: float, step_s: float = 0.1):
    """Yield until condition() is true; False after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        yield step_s
    return True


def settle():
    """Wait until the window's first draws (shader compiles on Mesa) are over: the loop
    ticks at its full rate for a second."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        yield 1.0
        if loop_rate(time.monotonic() - 1.0, time.monotonic()) > 0.7 / TICK_S:
            return
    log("the main loop never settled")


def install_addon():
    """Preferences > Add-ons > Install... with the legacy zip, then enable it."""
    bpy.ops.preferences.addon_install(filepath=CONFIG["zip"], overwrite=True)
    bpy.ops.preferences.addon_enable(module=ADDON)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.engine_python = CONFIG["python"]
    module = addon()
    report["steps"]["install"] = {
        "module_file": module.__file__,
        "registered": hasattr(bpy.types, "VIEW3D_PT_ganfit"),
        "numpy_advice": hasattr(bpy.types, "VIEW3D_PT_ganfit_no_numpy"),
    }
    panel = bpy.types.VIEW3D_PT_ganfit
    draw = panel.draw

    def counted(self, context):
        draws["panel"] += 1
        job = module.bl_jobs.current_job()
        if job is not None:
            panel_fractions.append(job.state.fraction)
        report["steps"]["install"]["sidebar_width"] = context.region.width
        draw(self, context)

    panel.draw = counted


def activate() -> None:
    """Give the window the keyboard focus, as a click on it does on a desktop: Blender
    shows reports in the status bar of its active window only. (Xvfb runs no window
    manager; Blender also has unmapped helper windows, hence --onlyvisible.)"""
    xdotool("search", "--sync", "--onlyvisible", "--class", "blender", "windowfocus", "--sync")


def open_face_tab():
    """Show the sidebar and make "Face" its active tab: the API where Blender has one
    (4.1+), else the mouse wheel turned over the sidebar's tabs until the panel draws."""
    window, area, sidebar, _ = window_parts()
    area.spaces.active.show_region_ui = True
    area.tag_redraw()
    yield 1.0
    window, area, sidebar, _ = window_parts()
    left, top, width, height = rect(sidebar, window)
    ui_scale = bpy.context.preferences.system.ui_scale
    # The tabs run down the sidebar's right edge, about 20 (unscaled) pixels wide.
    xdotool("mousemove", str(left + width - int(8 * ui_scale)), str(top + height // 2))
    if "active_panel_category" in sidebar.bl_rna.properties:
        sidebar.active_panel_category = "Face"
    for _ in range(12):
        before = draws["panel"]
        sidebar.tag_redraw()
        yield 0.5
        if draws["panel"] > before:
            break
        xdotool("click", "5")  # wheel down: the next tab
        yield 0.3
    report["steps"]["panel"] = {"drawn": draws["panel"] > 0,
                                "sidebar": rect(sidebar, window),
                                "view": rect(window_parts()[3], window)}


def count_draws():
    """Draw handlers counting redraws of the 3D view's main region and its sidebar."""
    def view():
        draws["view"] += 1

    def side():
        draws["sidebar"] += 1

    bpy.types.SpaceView3D.draw_handler_add(view, (), "WINDOW", "POST_PIXEL")
    bpy.types.SpaceView3D.draw_handler_add(side, (), "UI", "POST_PIXEL")


def start(photo: str) -> bool:
    settings = bpy.context.scene.ganfit
    settings.photo_source, settings.photo_path = "FILE", photo
    settings.quality, settings.device = "preview", "cpu"
    return call(bpy.ops.ganfit.reconstruct) == {"FINISHED"}


def old_redraw() -> float | None:
    """The 0.1.0 add-on's redraws during a job, for the benchmark's "before": a window
    property set and every 3D view area tagged, ten times a second."""
    jobs = addon().bl_jobs
    if jobs.current_job() is None:
        return None
    status = bpy.context.window_manager.ganfit_status
    status.message = status.message  # a property update: a window-wide redraw
    for area in bpy.context.window_manager.windows[0].screen.areas:
        if area.type == "VIEW_3D":
            area.tag_redraw()
    return 0.1


def reconstruct(name: str, redraw: str = "sidebar", shots: bool = True):
    """One reconstruction of the sample photo from the panel, watched until it ends."""
    jobs = addon().bl_jobs
    status = bpy.context.window_manager.ganfit_status
    draws_before = dict(draws)
    started = time.monotonic()
    step: dict = {"started": start(CONFIG["photo"]), "redraw": redraw, "progress": []}
    report["steps"][name] = step
    job = jobs.current_job()
    if job is None:
        step["message"] = status.message
        return
    if redraw == "whole_window":
        bpy.app.timers.register(old_redraw, first_interval=0.1)
    shot = False
    while jobs.current_job() is not None:
        state = job.state
        if not step["progress"] or step["progress"][-1][1:] != [state.fraction, state.label]:
            step["progress"].append([time.monotonic() - started, state.fraction, state.label])
        if state.done is not None:
            step["engine_seconds"] = state.done.seconds
        if shots and not shot and state.stage == "full_fit" and state.step > 0:
            yield 0.5  # let the sidebar draw this step
            screenshot(f"{name}_progress")
            shot = True
            _, _, _, view = window_parts()
            left, top, width, height = rect(view, window_parts()[0])
            xdotool("mousemove", str(left + width // 2), str(top + height // 2))  # the artist
        yield 0.1
    ended = time.monotonic()
    step.update(
        wall_seconds=ended - started, loop_hz=loop_rate(started, ended),
        message=status.message, level=status.level,
        draws={k: draws[k] - draws_before[k] for k in draws},
        panel_fractions=list(panel_fractions))
    panel_fractions.clear()
    if shots:
        call(bpy.ops.view3d.view_selected, in_view=True)  # the artist frames the new head
    yield 2.0  # the head drawn, the report in the status bar
    if shots:
        screenshot(f"{name}_done")


def check_head(name: str) -> None:
    """The new head is active and selected, textured, and its sliders move its vertices."""
    obj = bpy.context.view_layer.objects.active
    step = report["steps"][name]
    step["active"] = obj.name if obj is not None else None
    if obj is None or obj.data.shape_keys is None:
        return
    step["selected"] = sorted(o.name for o in bpy.context.view_layer.objects if o.select_get())
    keys = obj.data.shape_keys.key_blocks
    step["shape_keys"] = len(keys)
    step["textured"] = any(n.type == "TEX_IMAGE" and n.image is not None
                           for m in obj.data.materials if m and m.node_tree
                           for n in m.node_tree.nodes)
    call(bpy.ops.ganfit.set_expression, mode="NEUTRAL")
    rest = evaluated_points(obj)
    keys["jawOpen"].value = 1.0  # what dragging the jawOpen slider to 1 sets
    opened = evaluated_points(obj)
    keys["jawOpen"].value = 0.0
    moved = [abs(a - b) for a, b in zip(rest, opened, strict=True)]
    step["jaw_open_max_move_m"] = max(moved)
    step["jaw_open_moved_coordinates"] = sum(m > 1e-4 for m in moved)


def evaluated_points(obj) -> list[float]:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    depsgraph.update()
    mesh = obj.evaluated_get(depsgraph).to_mesh()
    points = [0.0] * (len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", points)
    obj.evaluated_get(depsgraph).to_mesh_clear()
    return points


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cancel_run():
    """Start, wait for the engine's first progress, press Cancel."""
    jobs = addon().bl_jobs
    step: dict = {"started": start(CONFIG["photo"])}
    report["steps"]["cancel"] = step
    job = jobs.current_job()
    if job is None:
        return
    yield from wait_until(lambda: job.state.stage != "", 120)
    step["stage_at_cancel"] = job.state.stage
    pid = job.process.pid
    began = time.monotonic()
    call(bpy.ops.ganfit.cancel)
    step["cancel_seconds"] = time.monotonic() - began
    step["engine_alive"] = alive(pid)
    step["work_dir_left"] = job.work_dir.exists()
    step["job_left"] = jobs.current_job() is not None
    step["message"] = bpy.context.window_manager.ganfit_status.message
    yield 1.0
    screenshot("cancel")


def error_run():
    """A photo without a face: the engine's message in the panel, no head."""
    jobs = addon().bl_jobs
    heads = {o.name for o in bpy.data.objects}
    step: dict = {"started": start(CONFIG["no_face"])}
    report["steps"]["error"] = step
    yield from wait_until(lambda: jobs.current_job() is None, 300)
    status = bpy.context.window_manager.ganfit_status
    step.update(message=status.message, level=status.level,
                new_objects=sorted({o.name for o in bpy.data.objects} - heads))
    yield 2.0
    screenshot("error")


def test_scenario():
    yield from settle()
    activate()
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    install_addon()
    count_draws()
    yield from open_face_tab()
    yield 1.0
    screenshot("panel")
    yield from reconstruct("reconstruct")
    check_head("reconstruct")
    yield from cancel_run()
    yield from error_run()


def bench_scenario():
    """Reconstructions with each redraw behaviour, the loop rate before each as idle. A
    head is in the scene throughout (imported from CONFIG["result"] first; each run then
    replaces it), as when an artist reconstructs again: redrawing the 3D view costs most
    with a head to draw (Mesa's software GL here)."""
    yield from settle()
    activate()
    install_addon()
    count_draws()
    yield from open_face_tab()
    bpy.ops.ganfit.import_result(filepath=str(Path(CONFIG["result"]) / "result.json"))
    for i, redraw in enumerate(CONFIG["bench_runs"]):
        yield from settle()  # the new head's first draws are over
        idle_start = time.monotonic()
        yield 5.0
        report["steps"][f"idle_{i}"] = {"loop_hz": loop_rate(idle_start, time.monotonic())}
        yield from reconstruct(f"run_{i}", redraw=redraw, shots=False)


def finish() -> None:
    (OUT / "report.json").write_text(json.dumps(report, indent=1))
    log("done")
    window = bpy.context.window_manager.windows[0]
    with bpy.context.temp_override(window=window):
        bpy.ops.wm.quit_blender()


def main():
    scenario = {"test": test_scenario, "bench": bench_scenario}[CONFIG["scenario"]]()

    def step() -> float | None:
        try:
            return next(scenario)
        except StopIteration:
            pass
        except Exception:  # record it: the test reads the report
            report["error"] = traceback.format_exc()
            log(report["error"])
        finish()
        return None

    bpy.context.preferences.view.show_splash = False
    bpy.context.preferences.view.smooth_view = 0  # framing the head: no animation to wait for
    bpy.app.timers.register(count_tick, first_interval=TICK_S, persistent=True)
    bpy.app.timers.register(step, first_interval=1.0, persistent=True)


main()
