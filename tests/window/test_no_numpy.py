"""Blender's Python without numpy (Debian's Blender uses the system Python, where numpy is
a separate package): the legacy add-on installs and enables, and instead of the add-on's
panels registers one that says how to install numpy. Background Blender (no window);
numpy is hidden by a package on PYTHONPATH that fails to import."""

import subprocess

import pytest

pytestmark = pytest.mark.slow  # Blender starts twice (~10 s)

SCRIPT = """
import bpy, sys
bpy.ops.preferences.addon_install(filepath=sys.argv[-1], overwrite=True)
bpy.ops.preferences.addon_enable(module="ganfit_blender")
import ganfit_blender.bl_no_numpy as advice
print("RESULT", hasattr(bpy.types, "VIEW3D_PT_ganfit_no_numpy"),
      hasattr(bpy.types, "VIEW3D_PT_ganfit"), "|".join(advice.advice()))
bpy.ops.preferences.addon_disable(module="ganfit_blender")
print("DISABLED", hasattr(bpy.types, "VIEW3D_PT_ganfit_no_numpy"))
"""


def test_missing_numpy_gives_advice_not_a_traceback(blender, legacy_zip, environment,
                                                     tmp_path):
    hidden = tmp_path / "hide" / "numpy"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('numpy hidden by the test')\n")
    env = environment(None, tmp_path / "home")
    env["PYTHONPATH"] = str(hidden.parent)
    run = subprocess.run(
        [blender.path, "-b", "--factory-startup", "--python-use-system-env",
         "--python-expr", SCRIPT, "--", str(legacy_zip)],
        env=env, capture_output=True, text=True, timeout=120)
    result = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT")), None)
    assert result is not None, run.stdout[-2000:] + run.stderr[-2000:]
    _, advice_panel, addon_panel, lines = result.split(" ", 3)
    assert (advice_panel, addon_panel) == ("True", "False")
    assert "python3-numpy" in lines and "pip install numpy" in lines
    assert "DISABLED False" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr

