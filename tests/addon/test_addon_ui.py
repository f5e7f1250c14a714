"""The panels and preferences draw (headless: into a layout that records every call),
naming only properties and operators that exist; messages wrap to the sidebar's width;
the fallbacks for Blender versions without progress bars and foldouts."""

import time
import types

import pytest

pytestmark = pytest.mark.blender


class Layout:
    """Stands in for bpy.types.UILayout: records prop/operator/label/progress calls.
    `bl_rna` is the real UILayout's (or one without some functions, as in old Blenders)."""

    bl_rna = None

    def __init__(self, calls: list):
        self.calls = calls

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == "panel":
                return Layout(self.calls), Layout(self.calls)
            return Layout(self.calls)
        return call


@pytest.fixture(autouse=True)
def _real_layout_rna(bpy_module):
    Layout.bl_rna = bpy_module.types.UILayout.bl_rna
    yield
    Layout.bl_rna = bpy_module.types.UILayout.bl_rna


class OldLayoutRna:
    """UILayout's RNA as Blender 3.4 has it: no `progress` (4.0) and no `panel` (4.1)."""

    functions = ("prop", "operator", "label", "box", "row", "column")


def _draw(cls, context, obj=None) -> list:
    calls: list = []
    owner = obj if obj is not None else types.SimpleNamespace()
    owner.layout = Layout(calls)
    cls.draw(owner, context)
    return calls


def _check_names(bpy, calls) -> None:
    for name, args, _ in calls:
        if name == "prop":
            data, prop = args[0], args[1]
            assert prop in data.bl_rna.properties, prop
        elif name == "operator":
            category, op = args[0].split(".")
            assert hasattr(getattr(bpy.ops, category), op), args[0]


def _labels(calls) -> list[str]:
    return [kw.get("text", "") for name, _, kw in calls if name == "label"]


def test_main_panel_idle_and_running(scene, addon, bpy_module, sample_photo, fake_engine):
    bpy = bpy_module
    settings = bpy.context.scene.ganfit
    settings.photo_path = str(sample_photo)
    settings.quality, settings.device = "preview", "cpu"
    settings.extra_photos.add().path = str(sample_photo)
    status = bpy.context.window_manager.ganfit_status
    status.message, status.level = "No face was found in the photo (exit code 3)", "ERROR"
    calls = _draw(addon.bl_ui.VIEW3D_PT_ganfit, bpy.context)
    _check_names(bpy, calls)
    operators = [args[0] for name, args, _ in calls if name == "operator"]
    assert "ganfit.reconstruct" in operators and "ganfit.cancel" not in operators
    assert "ganfit.remove_photo" in operators and "ganfit.add_photos" in operators
    assert " ".join(_labels(calls)) == status.message  # wrapped over lines, nothing lost

    fake_engine("emit('stage', name='full_fit')\n"
                "emit('progress', stage='full_fit', step=40, steps=300, loss={})\n"
                "time.sleep(60)\n")
    assert bpy.ops.ganfit.reconstruct() == {"FINISHED"}
    job = addon.bl_jobs.current_job()
    deadline = time.monotonic() + 20
    while job.state.step < 40 and time.monotonic() < deadline:
        addon.bl_jobs.tick()
        time.sleep(0.02)
    assert status.message == ""  # the old message goes when a run starts
    calls = _draw(addon.bl_ui.VIEW3D_PT_ganfit, bpy.context)
    operators = [args[0] for name, args, _ in calls if name == "operator"]
    assert "ganfit.cancel" in operators and "ganfit.reconstruct" not in operators
    (progress,) = [kw for name, _, kw in calls if name == "progress"]
    assert progress["text"] == "Fitting the face 40/300"
    assert progress["factor"] == pytest.approx(0.2 + 0.6 * 40 / 300)

    Layout.bl_rna = OldLayoutRna  # Blender 3.4: no progress bar, the text with a percentage
    calls = _draw(addon.bl_ui.VIEW3D_PT_ganfit, bpy.context)
    assert not [c for c in calls if c[0] == "progress"]
    assert "Fitting the face 40/300 (28%)" in _labels(calls)
    assert bpy.ops.ganfit.cancel() == {"FINISHED"}


def test_messages_wrap_to_the_sidebar_width(addon, bpy_module):
    ui = addon.bl_ui
    message = ("astronaut.png: the engine was stopped by signal 11 (SIGSEGV) while fitting "
               "the face: Fatal Python error: Segmentation fault")
    for width in (120, 200, 400):
        lines = ui.wrap(message, width, ui.text_width)
        assert " ".join(lines) == message
        assert all(ui.text_width(line) <= width for line in lines if " " in line)
        # greedy: the next line's first word would not have fitted
        for line, after in zip(lines, lines[1:], strict=False):
            assert ui.text_width(f"{line} {after.split()[0]}") > width
    assert len(ui.wrap(message, 120, ui.text_width)) > len(ui.wrap(message, 400, ui.text_width))
    assert ui.text_width("W" * 10) > ui.text_width("i" * 10)  # measured, not counted

    def context(width, scale):
        return types.SimpleNamespace(
            region=types.SimpleNamespace(width=width),
            preferences=types.SimpleNamespace(system=types.SimpleNamespace(ui_scale=scale)))

    assert ui.message_width(context(600, 2.0)) == 300 - ui.MESSAGE_MARGINS_PX
    assert ui.message_width(context(600, 1.0)) == 600 - ui.MESSAGE_MARGINS_PX
    assert ui.message_width(context(600, 0.0)) == 600 - ui.MESSAGE_MARGINS_PX  # no window


def test_expression_panel_groups_every_shape_key(scene, addon, bpy_module, result_dir):
    bpy = bpy_module
    assert not addon.bl_ui.VIEW3D_PT_ganfit_expressions.poll(bpy.context)
    bpy.ops.ganfit.import_result(filepath=str(result_dir / "result.json"))
    context = bpy.context
    assert addon.bl_ui.VIEW3D_PT_ganfit_expressions.poll(context)
    assert addon.bl_ui.VIEW3D_PT_ganfit_export.poll(context)
    calls = _draw(addon.bl_ui.VIEW3D_PT_ganfit_expressions, context)
    _check_names(bpy, calls)
    keys = context.active_object.data.shape_keys.key_blocks
    sliders = [kw["text"] for name, args, kw in calls if name == "prop" and args[1] == "value"]
    assert sorted(sliders) == sorted(k.name for k in keys[1:])
    groups = [args[0] for name, args, _ in calls if name == "panel"]
    assert groups == [f"ganfit_group_{g}" for g in
                      ("Brows", "Eyes", "Cheeks", "Nose", "Jaw", "Mouth")]
    _check_names(bpy, _draw(addon.bl_ui.VIEW3D_PT_ganfit_export, context))

    Layout.bl_rna = OldLayoutRna  # Blender 3.4: a box per group, always open
    calls = _draw(addon.bl_ui.VIEW3D_PT_ganfit_expressions, context)
    assert not [c for c in calls if c[0] == "panel"]
    assert [c[0] for c in calls].count("box") == 6
    sliders = [kw["text"] for name, args, kw in calls if name == "prop" and args[1] == "value"]
    assert sorted(sliders) == sorted(k.name for k in keys[1:])


def test_preferences_show_engine_and_models(scene, addon, bpy_module, addon_prefs, tmp_path):
    bpy = bpy_module
    addon_prefs.engine_python = str(tmp_path / "missing-python")
    calls = _draw(addon.bl_ui.GanfitPreferences, bpy.context, addon_prefs)
    _check_names(bpy, calls)
    assert any("does not exist" in text for text in _labels(calls))
    assert any("Allow Online Access" in text for text in _labels(calls))
