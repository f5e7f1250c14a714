"""register() / unregister() in one place, over one tuple of classes."""

import bpy
from bpy.app.handlers import persistent

from . import bl_jobs, bl_operators, bl_ui

# Property groups before what points at them, then operators, then the panels using both.
CLASSES = bl_ui.PROPERTY_CLASSES + bl_operators.CLASSES + bl_ui.PANEL_CLASSES


@persistent
def _on_load_pre(*_args) -> None:
    """Opening another file: the running job's scene goes away, so stop the engine."""
    bl_jobs.shutdown()


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.ganfit = bpy.props.PointerProperty(type=bl_ui.GanfitSettings)
    bpy.types.WindowManager.ganfit_status = bpy.props.PointerProperty(type=bl_ui.GanfitStatus)
    bpy.app.handlers.load_pre.append(_on_load_pre)


def unregister() -> None:
    bl_jobs.shutdown()
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
    del bpy.types.WindowManager.ganfit_status
    del bpy.types.Scene.ganfit
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
