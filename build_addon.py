"""Build the add-on from one source tree in both of Blender's forms:

- dist/ganfit_blender-<version>.zip, the Blender 4.2+ extension: the add-on package at
  the zip's root, addon_manifest.toml as blender_manifest.toml, and the engine source
  under engine_src/engine/ (the add-on runs it with the engine's own Python); checked
  with Blender's own extension validator, which runs on plain Python from the bpy
  module's bundled scripts;
- dist/ganfit_blender-<version>-legacy.zip, the add-on for Blender 3.4 to 4.1
  (Preferences > Add-ons > Install...): the same files in a ganfit_blender/ folder, with
  a `bl_info` made from the manifest written into its __init__.py.

Both are written deterministically (sorted names, fixed timestamps).

    python build_addon.py [--out DIR] [--no-validate]
"""

import argparse
import ast
import importlib.util
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_DIR = ROOT / "ganfit_blender"
ENGINE_DIR = ROOT / "engine"
MANIFEST = ROOT / "addon_manifest.toml"
BUNDLED_SOURCE = "engine_src"  # must match ganfit_blender.process.BUNDLED_SOURCE
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# The legacy add-on: the oldest Blender it was run in (Debian's 3.4.1), where it appears.
LEGACY_BLENDER_MIN = (3, 4, 0)
LEGACY_LOCATION = "View3D > Sidebar > Face"


def read_manifest() -> dict:
    with MANIFEST.open("rb") as f:
        return tomllib.load(f)


def _files(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        found += [Path(dirpath) / f for f in sorted(filenames)
                  if Path(f).suffix not in SKIP_SUFFIXES]
    return found


def zip_entries() -> list[tuple[str, Path]]:
    """(name in the zip, source file) for everything the extension ships."""
    entries = [(p.relative_to(ADDON_DIR).as_posix(), p) for p in _files(ADDON_DIR)]
    entries += [(f"{BUNDLED_SOURCE}/{p.relative_to(ROOT).as_posix()}", p)
                for p in _files(ENGINE_DIR)]
    return sorted(entries)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def validator_script() -> Path:
    """blender_ext.py of the installed bpy module (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the bpy module is not installed: cannot validate the extension")
    base = Path(list(spec.submodule_search_locations)[0])
    found = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise RuntimeError(f"no blender_ext.py under {base}")
    return found[-1]


def validate(zip_path: Path) -> str:
    """Run Blender's extension validator on the zip; RuntimeError with its output if not
    valid. Returns the validator's output."""
    run = subprocess.run([sys.executable, str(validator_script()), "validate", str(zip_path)],
                         capture_output=True, text=True)
    output = (run.stdout + run.stderr).strip()
    if run.returncode != 0 or "Success" not in output:
        raise RuntimeError(f"extension validation failed for {zip_path}:\n{output}")
    return output


def bl_info(manifest: dict) -> dict:
    """The legacy add-on's bl_info, from the extension manifest (one owner per fact)."""
    return {
        "name": manifest["name"],
        "author": manifest["maintainer"],
        "version": tuple(int(part) for part in manifest["version"].split(".")),
        "blender": LEGACY_BLENDER_MIN,
        "location": LEGACY_LOCATION,
        "description": manifest["tagline"],
        "category": manifest["tags"][0],
    }


def with_bl_info(init_source: str, info: dict) -> str:
    """__init__.py's source with `bl_info = {...}` after its docstring (Blender reads it
    with ast.literal_eval, so it must be a literal at module level)."""
    tree = ast.parse(init_source)
    first = tree.body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    lines = init_source.splitlines(keepends=True)
    cut = first.end_lineno if has_doc else 0
    fields = "".join(f"    {key!r}: {value!r},\n" for key, value in info.items())
    return "".join(lines[:cut]) + f"\nbl_info = {{\n{fields}}}\n" + "".join(lines[cut:])


def _write_partial(target: Path, entries: list[tuple[str, bytes]]) -> Path:
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, data in entries:
            _add(archive, name, data)
    return partial


def build_legacy(out_dir: Path = ROOT / "dist") -> Path:
    """Write the legacy add-on zip (Blender 3.4 to 4.1) into out_dir; returns its path."""
    manifest = read_manifest()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['id']}-{manifest['version']}-legacy.zip"
    package = manifest["id"]
    entries = []
    for name, path in zip_entries():
        data = path.read_bytes()
        if name == "__init__.py":
            data = with_bl_info(data.decode("utf-8"), bl_info(manifest)).encode("utf-8")
        entries.append((f"{package}/{name}", data))
    _write_partial(target, entries).replace(target)
    return target


def build(out_dir: Path = ROOT / "dist", check: bool = True) -> Path:
    """Write the extension zip into out_dir (replacing an older build of the same
    version) and return its path."""
    manifest = read_manifest()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    partial = _write_partial(target, [("blender_manifest.toml", MANIFEST.read_bytes())] +
                             [(name, path.read_bytes()) for name, path in zip_entries()])
    if check:
        try:
            validate(partial)
        except RuntimeError:
            partial.unlink()
            raise
    partial.replace(target)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip Blender's extension validator")
    args = parser.parse_args()
    try:
        path = build(args.out, check=not args.no_validate)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    print(path)
    print(build_legacy(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
