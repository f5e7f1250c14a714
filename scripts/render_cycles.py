"""Render the imported head with Cycles (CPU) from the front and a three-quarter view.

    .venv/bin/python scripts/render_cycles.py HEAD.blend --out DIR [--samples 16]
        [--size 512] [--neutral]

HEAD.blend is what scripts/blender_import.py saves. Writes DIR/front.png and
DIR/three_quarter.png: a quick look at shape, texture and expression.
"""

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

VIEWS = {"front": 0.0, "three_quarter": 40.0}  # camera yaw in degrees, towards the +X side


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("blend", type=Path, help=".blend with the head")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    parser.add_argument("--size", type=int, default=512, help="image width and height")
    parser.add_argument("--neutral", action="store_true",
                        help="render the neutral expression instead of the fitted one")
    return parser.parse_args(argv)


def _head(bpy):
    heads = [o for o in bpy.data.objects if o.type == "MESH" and "ganfit_source" in o]
    if not heads:
        raise SystemExit("error: no head made by the add-on in this .blend")
    return heads[0]


def _bounds(bpy, head):
    """(centre, size) of the evaluated head in world space (metres)."""
    from mathutils import Vector

    evaluated = head.evaluated_get(bpy.context.evaluated_depsgraph_get())
    points = [evaluated.matrix_world @ v.co for v in evaluated.data.vertices]
    low = Vector([min(p[i] for p in points) for i in range(3)])
    high = Vector([max(p[i] for p in points) for i in range(3)])
    return (low + high) / 2, high - low


def _light(bpy, scene, name: str, location, energy: float, size: float, target) -> None:
    light = bpy.data.lights.new(name, "AREA")
    light.energy, light.size = energy, size
    obj = bpy.data.objects.new(name, light)
    obj.location = location
    obj.rotation_euler = (target - obj.location).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(obj)


def _setup(bpy, scene, args: argparse.Namespace, centre, size):
    from mathutils import Vector

    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = args.samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = args.size
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.view_settings.view_transform = "Standard"
    world = scene.world or bpy.data.worlds.new("World")
    scene.world = world
    world.color = (0.18, 0.18, 0.2)
    if world.node_tree is not None:
        background = next(n for n in world.node_tree.nodes if n.type == "BACKGROUND")
        background.inputs["Color"].default_value = (0.18, 0.18, 0.2, 1.0)
    reach = max(size) * 2.0
    _light(bpy, scene, "key", centre + Vector((-reach, -reach * 1.2, reach * 0.8)), 20.0,
           reach, centre)
    _light(bpy, scene, "fill", centre + Vector((reach, -reach, 0.0)), 8.0, reach, centre)
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.lens = 85.0
    scene.collection.objects.link(camera)
    scene.camera = camera
    return camera


def _aim(camera, centre, size, yaw_deg: float) -> None:
    from mathutils import Vector

    fov = 2 * math.atan(camera.data.sensor_width / (2 * camera.data.lens))
    distance = 1.25 * max(size.x, size.z) / (2 * math.tan(fov / 2)) + size.y / 2
    yaw = math.radians(yaw_deg)
    camera.location = centre + distance * Vector((math.sin(yaw), -math.cos(yaw), 0.0))
    camera.rotation_euler = (centre - camera.location).to_track_quat("-Z", "Y").to_euler()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    user = Path(tempfile.mkdtemp(prefix="ganfit-blender-user-"))
    os.environ["BLENDER_USER_RESOURCES"] = str(user)
    try:
        import bpy

        bpy.ops.wm.open_mainfile(filepath=str(args.blend.resolve()))
        scene = bpy.context.scene
        head = _head(bpy)
        if args.neutral:
            for key in head.data.shape_keys.key_blocks[1:]:
                key.value = 0.0
        centre, size = _bounds(bpy, head)
        camera = _setup(bpy, scene, args, centre, size)
        args.out.mkdir(parents=True, exist_ok=True)
        for name, yaw in VIEWS.items():
            _aim(camera, centre, size, yaw)
            scene.render.filepath = str((args.out / f"{name}.png").resolve())
            bpy.ops.render.render(write_still=True)
            print(scene.render.filepath)
    finally:
        shutil.rmtree(user, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
