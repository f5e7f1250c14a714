"""Benchmark the renderer on the face model's face region (9,230 polygons, ~18k triangles).

    .venv/bin/python benchmarks/bench_render.py [--device cpu|cuda] [--sizes 224 512]
        [--repeats 20] [--threads N]

For each image size: the median wall time of the forward pass (project, rasterise,
interpolate normals and UVs, texture, SH shading, silhouette antialiasing) and of forward +
backward (gradients to vertices, texture and SH), after warm-up, and the peak memory
(CUDA: torch.cuda.max_memory_allocated; CPU: growth of the process's peak RSS, which only
shows what exceeds earlier peaks). Prints the load average, since a shared machine skews CPU
timings.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.facemodel import load_face_model  # noqa: E402
from engine.render import front_camera, render_textured, triangle_neighbours, uniform_sh  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, device: torch.device, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def bench_size(model, size: int, device: torch.device, repeats: int) -> dict[str, float]:
    region = model.region_triangles("face")
    triangles, uvs = model.triangles[region], model.triangle_uvs[region]
    neighbours = triangle_neighbours(triangles)
    camera = front_camera(
        (size, size), distance=60.0, focal=2.2 * size, target=(0.0, -2.0, 5.0), device=device
    )
    vertices_cam = camera.transform(model.neutral[None]).detach().requires_grad_(True)
    texture = torch.rand(1, 3, 512, 512, device=device, requires_grad=True)
    sh = uniform_sh(1, device=device).requires_grad_(True)

    def forward():
        return render_textured(
            vertices_cam, camera, triangles, uvs, texture, sh, (size, size), neighbours=neighbours
        ).image

    def forward_backward():
        forward().square().mean().backward()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():
        forward_ms = _median_ms(forward, device, repeats)
    backward_ms = _median_ms(forward_backward, device, repeats)
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return {"forward_ms": forward_ms, "forward_backward_ms": backward_ms, "peak_mib": peak_mib}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 512])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = load_face_model(device=device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {name}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.2f}, face triangles "
        f"{model.region_triangles('face').numel()}"
    )
    memory = "peak allocated" if device.type == "cuda" else "peak RSS growth"
    print(f"{'size':>6} {'forward ms':>11} {'fwd+bwd ms':>11} {memory + ' MiB':>22}")
    for size in args.sizes:
        result = bench_size(model, size, device, args.repeats)
        print(
            f"{size:>6} {result['forward_ms']:>11.1f} {result['forward_backward_ms']:>11.1f} "
            f"{result['peak_mib']:>22.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
