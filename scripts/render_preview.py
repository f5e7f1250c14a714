"""Render the face model's neutral shape, checker-textured and SH-lit, to a PNG.

    .venv/bin/python scripts/render_preview.py --out out/render_preview.png [--size 512]

For looking at the renderer's output by eye: the face should be upright, facing the viewer,
lit from the upper left, with the checker following the UV layout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.errors import EngineError  # noqa: E402
from engine.facemodel import load_face_model  # noqa: E402
from engine.render import front_camera, render_textured, uniform_sh  # noqa: E402


def checker_texture(size: int, squares: int = 16) -> torch.Tensor:
    """(1, 3, size, size) two-tone checker with a red tint growing with u (shows flips)."""
    index = torch.arange(size) * squares // size
    board = ((index[:, None] + index[None, :]) % 2).float()
    ramp = torch.linspace(0.0, 1.0, size)[None, :].expand(size, size)
    base = 0.45 + 0.45 * board
    return torch.stack([base * (0.7 + 0.3 * ramp), base * 0.85, base * 0.8])[None]


def preview_lighting() -> torch.Tensor:
    """(1, 9, 3) SH: ambient plus a key light from the camera's upper left (camera space:
    x right, y down, z forward, so the light's direction towards the scene is -x, -y, -z)."""
    sh = uniform_sh(1, intensity=0.55)
    sh[:, 1] = -0.5  # y: lit from above (normals with negative y)
    sh[:, 2] = -0.9  # z: lit from the camera side
    sh[:, 3] = -0.6  # x: lit from the left
    return sh


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    args = parser.parse_args(argv)
    try:
        model = load_face_model()
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    region = model.region_triangles("visible")
    triangles, uvs = model.triangles[region], model.triangle_uvs[region]
    size = args.size
    camera = front_camera((size, size), distance=70.0, focal=2.8 * size, target=(0.0, 0.0, 3.0))
    with torch.no_grad():
        vertices_cam = camera.transform(model.neutral[None])
        out = render_textured(
            vertices_cam,
            camera,
            triangles,
            uvs,
            checker_texture(1024),
            preview_lighting(),
            (size, size),
            background=torch.full((1, size, size, 3), 0.15),
        )
    pixels = (out.image[0].clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).numpy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(pixels)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
