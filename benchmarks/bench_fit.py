"""Per-stage time and peak memory of the fitting stages for each preset, on CPU or GPU.

    .venv/bin/python benchmarks/bench_fit.py --landmarks RESULT.json [--device cuda]

The stages after detection (landmark fit, full fit with the installed identity network,
texture bake) on skimage's astronaut photo, with the 68 landmarks taken
from an earlier result.json (so this runs where no landmark detector is installed, such
as a GPU machine without MediaPipe). `bench_presets.py` times the whole CLI instead.
"""

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch

from engine.device import resolve_device
from engine.facemodel import load_face_model
from engine.fit.fitter import fit
from engine.fit.presets import get_preset
from engine.imageio import Photo, working_image
from engine.pipeline import StageClock
from engine.progress import Progress
from engine.texture.atlas import bake_albedo

STAGES = ("landmark_fit", "full_fit", "texture")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--landmarks", type=Path, required=True,
                        help="a result.json of the astronaut photo (its view 0 landmarks)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--presets", nargs="+", default=["preview", "standard", "high"])
    args = parser.parse_args()
    device = resolve_device(args.device)
    landmarks = np.array(json.loads(args.landmarks.read_text())["views"][0]["landmarks"])
    photo = Photo(rgb=skimage.data.astronaut(), path=Path("astronaut.png"),
                  stored_size=(512, 512))
    start = time.perf_counter()
    model = load_face_model(device)
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'})"
          f", face model loaded in {time.perf_counter() - start:.2f} s")
    print(f"{'preset':9s}" + "".join(f"{s:>13s}" for s in STAGES)
          + f"{'total s':>9s}{'peak RSS MB':>13s}{'peak CUDA MB':>14s}{'identity':>10s}")
    for name in args.presets:
        preset = get_preset(name)
        work, scale = working_image(photo, preset.work_max_side)
        work_landmarks = torch.tensor((landmarks + 0.5) / scale - 0.5, dtype=torch.float32,
                                      device=device)[None]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        clock = StageClock(Progress(False))
        begin = time.perf_counter()
        fitted = fit(model, [work], work_landmarks, preset, on_stage=clock.enter)
        clock.enter("texture")
        bake_albedo(model, [work], fitted.state, preset.texture_size)
        clock.finish()
        total = time.perf_counter() - begin
        cuda = f"{torch.cuda.max_memory_allocated() / 2**20:.0f}" if device.type == "cuda" \
            else "-"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name:9s}" + "".join(f"{clock.timings[s]:13.2f}" for s in STAGES)
              + f"{total:9.1f}{rss:13.0f}{cuda:>14s}{str(fitted.identity_network):>10s}",
              flush=True)


if __name__ == "__main__":
    main()
