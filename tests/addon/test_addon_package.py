"""The extension zip: contents, Blender's validator, installation, registration."""

import ast
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_IMPORTS = {"bpy", "bpy_extras", "mathutils", "blf", "numpy"}


def test_zip_holds_manifest_addon_and_engine(addon_zip):
    manifest = tomllib.loads((ROOT / "addon_manifest.toml").read_text())
    assert addon_zip.name == f"ganfit_blender-{manifest['version']}.zip"
    assert manifest["blender_version_min"] == "4.2.0"
    with zipfile.ZipFile(addon_zip) as archive:
        names = set(archive.namelist())
        shipped = tomllib.loads(archive.read("blender_manifest.toml").decode())
    assert shipped == manifest
    addon_files = {p.relative_to(ROOT / "ganfit_blender").as_posix()
                   for p in (ROOT / "ganfit_blender").rglob("*.py")
                   if "__pycache__" not in p.parts}
    assert addon_files <= names and "__init__.py" in names
    engine_files = {f"engine_src/{p.relative_to(ROOT).as_posix()}"
                    for p in (ROOT / "engine").rglob("*.py") if "__pycache__" not in p.parts}
    assert engine_files <= names and "engine_src/engine/__main__.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_legacy_zip_is_the_same_addon_in_a_folder_with_bl_info(addon_zip, tmp_path):
    """Blender 3.4-4.1's form: every file of the extension under ganfit_blender/, and a
    bl_info made from the manifest that Blender's add-on loader can read (a literal)."""
    sys.path.insert(0, str(ROOT))
    import build_addon

    legacy = build_addon.build_legacy(tmp_path)
    manifest = tomllib.loads((ROOT / "addon_manifest.toml").read_text())
    assert legacy.name == f"ganfit_blender-{manifest['version']}-legacy.zip"
    with zipfile.ZipFile(addon_zip) as archive:
        extension = set(archive.namelist()) - {"blender_manifest.toml"}
    with zipfile.ZipFile(legacy) as archive:
        names = set(archive.namelist())
        init = archive.read("ganfit_blender/__init__.py").decode()
        plain = archive.read("ganfit_blender/result.py")
    assert names == {f"ganfit_blender/{name}" for name in extension}
    assert plain == (ROOT / "ganfit_blender" / "result.py").read_bytes()
    tree = ast.parse(init)
    (assign,) = [n for n in tree.body if isinstance(n, ast.Assign)
                 and [t.id for t in n.targets] == ["bl_info"]]
    info = ast.literal_eval(assign.value)
    assert info["name"] == manifest["name"] and info["version"] == (0, 1, 0)
    assert info["blender"] == (3, 4, 0) and info["category"] in manifest["tags"]
    assert ast.get_docstring(tree) == ast.get_docstring(
        ast.parse((ROOT / "ganfit_blender" / "__init__.py").read_text()))
    assert build_addon.build_legacy(tmp_path).read_bytes() == legacy.read_bytes()  # stable


def test_blender_validator_accepts_the_zip(addon_zip):
    sys.path.insert(0, str(ROOT))
    import build_addon

    assert "Success" in build_addon.validate(addon_zip)


def test_validator_rejects_a_bad_manifest(tmp_path):
    sys.path.insert(0, str(ROOT))
    import build_addon

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("blender_manifest.toml", (ROOT / "addon_manifest.toml").read_text()
                         .replace('tagline = "', 'tagline = "Ends with a full stop.'))
        archive.writestr("__init__.py", "")
    with pytest.raises(RuntimeError, match="validation failed"):
        build_addon.validate(bad)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_addon_imports_only_bpy_numpy_and_the_standard_library():
    for path in (ROOT / "ganfit_blender").glob("*.py"):
        outside = {m for m in _imports(path) if m not in sys.stdlib_module_names}
        assert outside <= ALLOWED_IMPORTS, (path.name, outside)


@pytest.mark.blender
def test_installed_extension_registers_its_operators_and_panels(addon, bpy_module):
    bpy = bpy_module
    assert Path(addon.__file__).resolve().is_relative_to(
        Path(bpy.utils.user_resource("EXTENSIONS")).resolve())
    for op in ("reconstruct", "cancel", "import_result", "export_glb", "export_fbx",
               "set_expression", "add_photos", "remove_photo", "assets"):
        assert hasattr(bpy.ops.ganfit, op), op
        assert getattr(bpy.ops.ganfit, op).get_rna_type() is not None
    for panel in ("VIEW3D_PT_ganfit", "VIEW3D_PT_ganfit_expressions", "VIEW3D_PT_ganfit_export"):
        assert hasattr(bpy.types, panel)
    assert hasattr(bpy.types.Scene, "ganfit")
    prefs = bpy.context.preferences.addons[addon.__name__].preferences
    assert prefs.engine_python == ""
    # The bundled engine is what the add-on runs.
    assert (Path(addon.__file__).parent / "engine_src" / "engine" / "__main__.py").is_file()


@pytest.mark.blender
def test_assets_list_runs_the_engine_command(addon, bpy_module, addon_prefs):
    """The preferences' model status comes from `engine assets list`, run with the
    engine's Python on the bundled engine source."""
    addon_prefs.engine_python = sys.executable
    assert bpy_module.ops.ganfit.assets(verb="list", wait=True) == {"FINISHED"}
    state = addon.bl_jobs.assets
    assert state.running == "" and state.message == ""
    assert any("ict-facekit" in line for line in state.lines), state.lines


@pytest.mark.blender
def test_download_needs_online_access(addon, bpy_module):
    assert not bpy_module.app.online_access
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy_module.ops.ganfit.assets(verb="fetch")
