"""What the add-on registers when Blender's Python has no numpy (Debian's and some
other distributions' Blender use the system Python, where numpy is a separate package):
a Face panel and preferences that say how to install it, instead of a traceback.

Imports bpy only, never numpy or the modules that need it.
"""

import sys

import bpy

ADDON_ID = __package__


def advice() -> list[str]:
    """The lines the panel and the preferences show (short: labels do not wrap)."""
    return [
        "Blender's Python has no numpy,",
        "which Face Reconstruction needs.",
        "Debian, Ubuntu:",
        "  sudo apt install python3-numpy",
        "Elsewhere:",
        f"  {sys.executable} -m pip install numpy",
        "then restart Blender.",
    ]


def _draw(layout: bpy.types.UILayout) -> None:
    col = layout.column(align=True)
    for i, line in enumerate(advice()):
        col.label(text=line, icon="ERROR" if i == 0 else "BLANK1")


class VIEW3D_PT_ganfit_no_numpy(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Face"
    bl_label = "Face Reconstruction"

    def draw(self, context):
        _draw(self.layout)


class GanfitNoNumpyPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    def draw(self, context):
        _draw(self.layout)


CLASSES = (VIEW3D_PT_ganfit_no_numpy, GanfitNoNumpyPreferences)


def register() -> None:
    print("Face Reconstruction: " + " ".join(line.strip() for line in advice()))
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
