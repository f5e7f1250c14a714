"""Training speed of the GAN texture model (issue 9): images/s of full training steps.

    .venv/bin/python benchmarks/train_texture_gan.py [--configs tiny small full]
        [--device auto|cpu|cuda] [--steps 10] [--batch N] [--resolution N] [--data DIR]
        [--threads N]

For each configuration: the networks' sizes, then the median seconds of a training step
(generator update, discriminator update, with lazy R1 and augmentation at p = 0.5 as late
in a run) after warm-up, as images/s, and on CUDA the peak memory and whether bfloat16
autocast ran. Steps on random atlases with half their texels trusted, unless --data names a
`texture-data build` folder. Prints the load average, since a shared machine skews CPU
timings. A real run: `python -m engine texture-model train DATA --out RUN --config full`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.device import resolve_device  # noqa: E402
from engine.texture.gan import PRESETS, preset  # noqa: E402
from engine.texture.train import GanTrainer, load_training_data  # noqa: E402


def _count(module: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f} M"


def bench(name: str, args: argparse.Namespace, device: torch.device) -> None:
    config = preset(name, args.resolution, args.batch)
    size = (config.resolution, 2 * config.resolution)
    if args.data:
        images, masks, _ = load_training_data(args.data, config.resolution)
    else:
        images = torch.rand(64, 3, *size) * 2 - 1
        masks = (torch.rand(64, 1, *size) < 0.5).float()
    trainer = GanTrainer(config, images, masks, device)
    trainer.augment_p = 0.5
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        trainer.train_step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    line = (f"{name:5s} {size[0]}x{size[1]} batch {config.batch:3d}  G {_count(trainer.generator)}"
            f"  D {_count(trainer.discriminator)}  {seconds * 1e3:8.1f} ms/step  "
            f"{config.batch / seconds:8.1f} images/s")
    if device.type == "cuda":
        line += (f"  peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
                 f"  autocast {trainer.autocast_dtype}")
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", choices=PRESETS, default=["tiny", "small"])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per config")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None, help="default: each config's")
    parser.add_argument("--resolution", type=int, default=None, help="default: each config's")
    parser.add_argument("--data", type=Path, default=None, help="a texture-data folder")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    for name in args.configs:
        bench(name, args, device)


if __name__ == "__main__":
    main()
