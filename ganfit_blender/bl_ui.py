"""Properties, the View3D > Sidebar > "Face" panels, and the add-on preferences."""

from collections.abc import Callable

import blf
import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    PointerProperty,
    StringProperty,
)

from . import bl_compat, bl_jobs, bl_scene, presets
from .bl_operators import ADDON_ID, engine_paths
from .expressions import grouped
from .process import ENV_PYTHON, EngineSetupError

QUALITY_ITEMS = (
    ("preview", "Preview", "Fast, low detail: about a minute on a laptop CPU"),
    ("standard", "Standard", "The default: seconds on a GPU"),
    ("high", "High", "Full-resolution texture and more fitting steps"),
)
DEVICE_ITEMS = (
    ("auto", "Auto", "A GPU when the engine finds one, else the CPU"),
    ("cpu", "CPU", "Always the CPU"),
    ("cuda", "CUDA", "An NVIDIA GPU"),
)
LEVEL_ICONS = {"INFO": "INFO", "WARNING": "ERROR", "ERROR": "CANCEL"}


class GanfitPhoto(bpy.types.PropertyGroup):
    path: StringProperty(name="Photo", subtype="FILE_PATH",
                         description="Another photo of the same person")


class GanfitSettings(bpy.types.PropertyGroup):
    """Per-scene choices of the Face panel."""

    photo_source: EnumProperty(
        name="Photo from", default="FILE", description="Where the main photo comes from",
        items=(("FILE", "File", "A photo file on disk"),
               ("IMAGE", "Image", "An image already loaded in Blender")))
    photo_path: StringProperty(name="Photo", subtype="FILE_PATH",
                               description="The photo of the face to reconstruct")
    photo_image: PointerProperty(name="Image", type=bpy.types.Image,
                                 description="A loaded image of the face to reconstruct")
    extra_photos: CollectionProperty(type=GanfitPhoto)
    quality: EnumProperty(name="Quality", items=QUALITY_ITEMS, default="standard",
                          description="Speed against detail of the fit")
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto",
                         description="Where the engine computes")
    reference_image: bl_scene.reference_image_property()
    on_existing: bl_scene.on_existing_property()
    export_arkit: BoolProperty(
        name="ARKit names", default=False,
        description="Name morph targets as Apple ARKit's 52 blend shapes")
    export_keep_expression: BoolProperty(
        name="Keep current expression", default=False,
        description="Export the sliders' current values as default morph weights (else 0)")
    export_preset: EnumProperty(
        name="Target", items=presets.enum_items(), default=presets.DEFAULT,
        description="The engine the file is for: format, axes, units, compression, LODs")
    export_lods: EnumProperty(
        name="LODs", items=presets.LOD_CHOICES, default="PRESET",
        description="Whether lower levels of detail go into the file")


class GanfitStatus(bpy.types.PropertyGroup):
    """How the last run ended, as the panel shows it (window-manager data: never saved).
    The running job's progress is bl_jobs.current_job()'s (see bl_jobs)."""

    message: StringProperty(description="How the last run ended")
    level: StringProperty(default="INFO", description="INFO, WARNING or ERROR")


class VIEW3D_PT_ganfit(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Face"
    bl_label = "Face Reconstruction"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.ganfit
        status = context.window_manager.ganfit_status
        job = bl_jobs.current_job()
        layout.use_property_split = False
        col = layout.column()
        col.enabled = job is None
        col.row().prop(settings, "photo_source", expand=True)
        if settings.photo_source == "FILE":
            col.prop(settings, "photo_path", text="")
        else:
            col.template_ID(settings, "photo_image", open="image.open")
        for i, photo in enumerate(settings.extra_photos):
            row = col.row(align=True)
            row.prop(photo, "path", text="")
            row.operator("ganfit.remove_photo", text="", icon="X").index = i
        col.operator("ganfit.add_photos", text="Add photos of the same person", icon="ADD")
        col.prop(settings, "quality")
        col.prop(settings, "device")
        col.prop(settings, "reference_image")
        col.prop(settings, "on_existing")
        if job is not None:
            bl_compat.progress_bar(layout, job.state.fraction, job.state.label)
            layout.operator("ganfit.cancel", icon="CANCEL")
        else:
            layout.operator("ganfit.reconstruct", icon="USER")
        if status.message:
            box = layout.box()
            lines = wrap(status.message, message_width(context), text_width)
            for i, line in enumerate(lines):
                box.label(text=line, icon=LEVEL_ICONS.get(status.level, "INFO") if i == 0
                          else "BLANK1")
        layout.operator("ganfit.import_result", text="Import result folder",
                        icon="FILE_FOLDER")


# Unscaled pixels: the sidebar's default width where no region is known (scripts), the
# width of the panel's margins, the category tabs, the box and the label's icon around a
# message line, and the UI font's size (Blender's "widget" style, 11 points). The margins
# were measured in Blender 3.4's window, where labels come out a little wider than
# blf measures them (about 105 px of a 229 px sidebar are not text); in 4.x+ they leave
# a little room to spare.
DEFAULT_SIDEBAR_PX = 300
MESSAGE_MARGINS_PX = 110
UI_FONT_PX = 11


def message_width(context) -> float:
    """The width a message line may take in the sidebar, in unscaled pixels: the
    region's real width divided by the interface scale, less the margins."""
    region = context.region
    scale = context.preferences.system.ui_scale or 1.0  # 0 without a window
    width = region.width / scale if region is not None else DEFAULT_SIDEBAR_PX
    return max(width - MESSAGE_MARGINS_PX, 4 * UI_FONT_PX)


def text_width(text: str) -> float:
    """How wide text is drawn in the UI font, in unscaled pixels."""
    blf.size(0, UI_FONT_PX)
    return blf.dimensions(0, text)[0]


def wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Split a message into lines no wider than width by measure (labels do not wrap);
    a single word wider than that keeps its own line."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if line and measure(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + ([line] if line else [])


class VIEW3D_PT_ganfit_expressions(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Face"
    bl_label = "Expressions"
    bl_parent_id = "VIEW3D_PT_ganfit"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return bl_scene.is_head(obj) and obj.data.shape_keys is not None

    def draw(self, context):
        layout = self.layout
        keys = context.active_object.data.shape_keys.key_blocks
        row = layout.row(align=True)
        row.operator("ganfit.set_expression", text="Neutral").mode = "NEUTRAL"
        row.operator("ganfit.set_expression", text="Fitted expression").mode = "FITTED"
        for label, names in grouped([k.name for k in keys[1:]]):
            body = bl_compat.foldout(layout, f"ganfit_group_{label}", f"{label} ({len(names)})")
            if body is not None:
                col = body.column(align=True)
                for name in names:
                    col.prop(keys[name], "value", text=name, slider=True)


class VIEW3D_PT_ganfit_export(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Face"
    bl_label = "Export for games"
    bl_parent_id = "VIEW3D_PT_ganfit"

    @classmethod
    def poll(cls, context):
        return bl_scene.is_head(context.active_object)

    def draw(self, context):
        layout = self.layout
        settings = context.scene.ganfit
        layout.prop(settings, "export_preset")
        layout.prop(settings, "export_arkit")
        layout.prop(settings, "export_keep_expression")
        layout.prop(settings, "export_lods")
        preset = presets.preset(settings.export_preset)
        operator = "ganfit.export_glb" if preset.fmt == "GLB" else "ganfit.export_fbx"
        row = layout.row(align=True)
        row.operator(operator, text=f"Export {preset.label} ({preset.extension})",
                     icon="EXPORT").preset = preset.key
        row.operator("ganfit.make_lods", text="", icon="MOD_DECIM")


class GanfitPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    engine_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH",
        description="The Python interpreter with the engine's packages (torch, mediapipe). "
                    f"Empty: ${ENV_PYTHON}, else the .venv of a source checkout")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "engine_python")
        try:
            python, _ = engine_paths(context)
            layout.label(text=f"Engine: {python}", icon="CHECKMARK")
        except EngineSetupError as error:
            layout.label(text=str(error), icon="ERROR")
            python = None
        box = layout.box()
        row = box.row()
        row.label(text="Models")
        busy = bool(bl_jobs.assets.running)
        sub = row.row()
        sub.enabled = python is not None and not busy
        sub.operator("ganfit.assets", text="Check models", icon="FILE_REFRESH").verb = "list"
        fetch = row.row()
        fetch.enabled = python is not None and not busy and bl_compat.online_access()
        fetch.operator("ganfit.assets", text="Download models", icon="IMPORT").verb = "fetch"
        if not bl_compat.online_access():
            box.label(text="Downloads need Preferences > System > Allow Online Access",
                      icon="INFO")
        if bl_jobs.assets.message:
            box.label(text=bl_jobs.assets.message)
        col = box.column(align=True)
        for line in bl_jobs.assets.lines:
            col.label(text=line)
        if not bl_jobs.assets.lines and not busy:
            col.label(text="Not checked yet")


PROPERTY_CLASSES = (GanfitPhoto, GanfitSettings, GanfitStatus, GanfitPreferences)
PANEL_CLASSES = (
    VIEW3D_PT_ganfit,
    VIEW3D_PT_ganfit_expressions,
    VIEW3D_PT_ganfit_export,
)
