"""The end of the main job: a result folder -> .blend and .glb, through the add-on itself.

    .venv/bin/python scripts/blender_import.py RESULT_DIR --blend OUT.blend --glb OUT.glb
        [--fbx OUT.fbx] [--target PRESET FILE ...] [--arkit] [--lods] [--zip ADDON.zip]

Builds the extension zip with build_addon.py (or takes --zip), installs it into a
temporary Blender user folder (headless bpy module), runs the add-on's own import
operator on the result folder, packs the images into the .blend, saves it and exports
the head with the add-on's export operators: --glb and --fbx as plain glTF and FBX,
--target once per engine preset (gltf, fbx, unity, unreal, godot, web). --lods also
keeps the levels of detail as objects in the .blend.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ganfit_blender.presets import preset  # noqa: E402  (plain Python, no bpy)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path, help="result folder written by the engine")
    parser.add_argument("--blend", type=Path, required=True, help=".blend file to write")
    parser.add_argument("--glb", type=Path, help="glTF binary to export")
    parser.add_argument("--fbx", type=Path, help="FBX to export")
    parser.add_argument("--target", nargs=2, action="append", default=[],
                        metavar=("PRESET", "FILE"), help="export for an engine preset")
    parser.add_argument("--arkit", action="store_true",
                        help="exactly ARKit's 52 morph targets, in ARKit's order")
    parser.add_argument("--lods", action="store_true", help="LOD objects in the .blend")
    parser.add_argument("--zip", type=Path, help="add-on zip to install (default: build one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        for name, _ in args.target:
            preset(name)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not (args.result / "result.json").is_file():
        print(f"error: {args.result} is not a result folder (no result.json)", file=sys.stderr)
        return 2
    if args.zip is None:
        sys.path.insert(0, str(ROOT))
        import build_addon

        args.zip = build_addon.build(ROOT / "dist")
    user = Path(tempfile.mkdtemp(prefix="ganfit-blender-user-"))
    os.environ["BLENDER_USER_RESOURCES"] = str(user)  # before bpy starts
    try:
        return _run(args, user)
    finally:
        shutil.rmtree(user, ignore_errors=True)


def _run(args: argparse.Namespace, user: Path) -> int:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(
        filepath=str(args.zip.resolve()), repo="user_default", enable_on_install=True)
    if not hasattr(bpy.ops.ganfit, "import_result"):
        print(f"error: the add-on in {args.zip} did not register", file=sys.stderr)
        return 1
    try:
        bpy.ops.ganfit.import_result(filepath=str(args.result.resolve() / "result.json"),
                                     reference_image=True, pack_textures=True)
    except RuntimeError as error:  # the operator reported an error
        print(f"error: {error}".strip(), file=sys.stderr)
        return 1
    head = bpy.context.active_object
    if args.lods:
        bpy.ops.ganfit.make_lods()
        bpy.context.view_layer.objects.active = head
    bpy.ops.file.pack_all()
    args.blend.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(args.blend.resolve()), compress=True)
    print(f"{args.blend}: {head.name}, {len(head.data.vertices)} vertices, "
          f"{len(head.data.polygons)} polygons, {len(head.data.shape_keys.key_blocks) - 1} "
          "shape keys")
    targets = [("gltf", args.glb), ("fbx", args.fbx)]
    targets += [(name, Path(path)) for name, path in args.target]
    for name, path in targets:
        if path is None:
            continue
        target = preset(name)
        operator = (bpy.ops.ganfit.export_glb if target.fmt == "GLB"
                    else bpy.ops.ganfit.export_fbx)
        path = path.resolve().with_suffix(target.extension)
        operator(filepath=str(path), preset=target.key, arkit_names=args.arkit)
        print(f"{path} ({target.label}): {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
