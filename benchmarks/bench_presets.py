"""Per-stage time and peak memory of `engine reconstruct` for each quality preset.

    .venv/bin/python benchmarks/bench_presets.py [--device cpu|cuda] [--presets preview ...]

Runs the real CLI in a fresh process per preset on skimage's 512x512 astronaut photo and
prints the stage timings from result.json, the wall time and the process's peak RSS (and
the peak CUDA memory the engine reports on a GPU).
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import skimage.data
from PIL import Image

from engine.result import read_info

REPO = Path(__file__).resolve().parents[1]
STAGES = ("detect", "landmark_fit", "full_fit", "texture")  # wall adds start-up and writing


def run(preset: str, device: str, photo: Path, out: Path) -> dict:
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "reconstruct", str(photo), "--out", str(out),
         "--quality", preset, "--device", device, "--force"],
        cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{preset}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall": wall, "rss_mb": max(peak, before) / 1024, "info": read_info(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--presets", nargs="+", default=["preview", "standard", "high"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "astronaut.png"
        Image.fromarray(skimage.data.astronaut()).save(photo)
        print(f"{'preset':9s}" + "".join(f"{s:>13s}" for s in STAGES)
              + f"{'wall s':>9s}{'peak RSS MB':>13s}{'peak CUDA MB':>14s}{'lmk px':>8s}")
        for preset in args.presets:
            r = run(preset, args.device, photo, Path(tmp) / preset)
            info = r["info"]
            cuda = info.peak_cuda_memory_mb
            print(f"{preset:9s}" + "".join(f"{info.timings.get(s, 0):13.2f}" for s in STAGES)
                  + f"{r['wall']:9.1f}{r['rss_mb']:13.0f}"
                  + f"{(f'{cuda:.0f}' if cuda is not None else '-'):>14s}"
                  + f"{info.metrics.landmark_error_px:8.2f}", flush=True)
        print(f"device: {info.device}; photo 512x512; identity network: "
              f"{info.identity_network}")


if __name__ == "__main__":
    main()
