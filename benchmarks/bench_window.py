"""The engine inside a live Blender window against the engine alone, and Blender's main
loop during a job, with the add-on's redraws as they are ("sidebar": only the sidebar,
only when the progress changed) and as they were in 0.1.0 ("whole_window": a window
property set and every 3D view redrawn ten times a second).

    python benchmarks/bench_window.py [--runs sidebar whole_window] [--alone 2]

Needs Blender (3.4+, with numpy) and Xvfb, as the window test does (scripts/setup.sh).
Each reconstruction is the sample photo at preview quality on the CPU; "engine s" is the
engine's own time (its done event), "wall s" the time from the click to the head built.
The loop rate is that of a 20 Hz timer (20 = never late). A head (the first alone run's
result) is in the scene from the start, as when an artist reconstructs again. On a
shared machine run it when the machine is quiet: the figures move with other load.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "window"))
sys.path.insert(0, str(ROOT))

from conftest import find_blender, run_driver, start_xvfb  # noqa: E402

import build_addon  # noqa: E402


def engine_alone(photo: Path, out: Path) -> tuple[float, float]:
    """(engine seconds, wall seconds) of one CLI run, as the add-on starts it."""
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "engine", "reconstruct", str(photo), "--out", str(out),
         "--quality", "preview", "--device", "cpu", "--progress", "jsonl"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(f"the engine failed alone: {run.stderr[-500:]}")
    done = json.loads(run.stdout.strip().splitlines()[-1])
    return float(done["seconds"]), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=["sidebar", "whole_window"],
                        choices=["sidebar", "whole_window"], help="redraw behaviour per run")
    parser.add_argument("--alone", type=int, default=2,
                        help="engine runs alone (at least one before Blender: its result is "
                             "the head in the scene; the rest after)")
    args = parser.parse_args()
    blender, reason = find_blender()
    started = start_xvfb()
    if blender is None or started is None:
        print(f"cannot run: {reason or 'Xvfb is missing'}", file=sys.stderr)
        return 1
    server, display = started
    work = Path(tempfile.mkdtemp(prefix="bench-window-"))
    photo = work / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(work / "grey.png")
    try:
        alone = [engine_alone(photo, work / f"alone{i}") for i in range(max(args.alone // 2, 1))]
        config = {"scenario": "bench", "bench_runs": args.runs, "result": str(work / "alone0"),
                  "zip": str(build_addon.build_legacy(work)), "photo": str(photo),
                  "no_face": str(work / "grey.png"),
                  "python": str(ROOT / ".venv" / "bin" / "python")}
        report = run_driver(blender, display, config, work / "blender", timeout_s=3600)
        alone += [engine_alone(photo, work / f"alone_after{i}")
                  for i in range(args.alone - max(args.alone // 2, 1))]
    finally:
        server.terminate()
        server.wait(10)
    steps = report["steps"]
    base = float(np.mean([engine for engine, _ in alone])) if alone else float("nan")
    print(f"Blender {report['blender']} under Xvfb, sidebar {steps['install']['sidebar_width']}"
          f" px wide; engine alone: "
          + ", ".join(f"{engine:.1f} s (wall {wall:.1f} s)" for engine, wall in alone))
    print(f"{'redraw':14s} {'idle Hz':>8s} {'job Hz':>8s} {'engine s':>9s} {'x alone':>8s} "
          f"{'wall s':>8s} {'view draws':>11s} {'sidebar draws':>14s}")
    for i, redraw in enumerate(args.runs):
        run, idle = steps[f"run_{i}"], steps[f"idle_{i}"]
        engine = run.get("engine_seconds", float("nan"))
        print(f"{redraw:14s} {idle['loop_hz']:8.1f} {run['loop_hz']:8.1f} {engine:9.1f} "
              f"{engine / base:8.2f} {run['wall_seconds']:8.1f} {run['draws']['view']:11d} "
              f"{run['draws']['sidebar']:14d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
