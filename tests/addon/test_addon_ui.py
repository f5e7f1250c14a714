"""The panels and preferences draw (headless: into a layout that records every call),
naming only properties and operators that exist."""

import types

import pytest

pytestmark = pytest.mark.blender


class Layout:
    """Stands in for bpy.types.UILayout: records prop/operator/label/progress calls."""

    def __init__(self, calls: list):
        self.calls = calls

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == "panel":
                return Layout(self.calls), Layout(self.calls)
            return Layout(self.calls)
        return call


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


def test_main_panel_idle_and_running(scene, addon, bpy_module, sample_photo):
    bpy = bpy_module
    settings = bpy.context.scene.ganfit
    settings.photo_path = str(sample_photo)
    settings.extra_photos.add().path = str(sample_photo)
    status = bpy.context.window_manager.ganfit_status
    status.message, status.level = "No face was found in the photo (exit code 3)", "ERROR"
    calls = _draw(addon.bl_ui.VIEW3D_PT_ganfit, bpy.context)
    _check_names(bpy, calls)
    operators = [args[0] for name, args, _ in calls if name == "operator"]
    assert "ganfit.reconstruct" in operators and "ganfit.cancel" not in operators
    assert "ganfit.remove_photo" in operators and "ganfit.add_photos" in operators
    assert " ".join(_labels(calls)) == status.message  # wrapped over lines, nothing lost

    status.running, status.fraction, status.label = True, 0.4, "Fitting the face 40/300"
    calls = _draw(addon.bl_ui.VIEW3D_PT_ganfit, bpy.context)
    operators = [args[0] for name, args, _ in calls if name == "operator"]
    assert "ganfit.cancel" in operators and "ganfit.reconstruct" not in operators
    (progress,) = [kw for name, _, kw in calls if name == "progress"]
    assert progress["factor"] == pytest.approx(0.4) and progress["text"] == status.label
    status.running = False


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


def test_preferences_show_engine_and_models(scene, addon, bpy_module, addon_prefs, tmp_path):
    bpy = bpy_module
    addon_prefs.engine_python = str(tmp_path / "missing-python")
    calls = _draw(addon.bl_ui.GanfitPreferences, bpy.context, addon_prefs)
    _check_names(bpy, calls)
    assert any("does not exist" in text for text in _labels(calls))
    assert any("Allow Online Access" in text for text in _labels(calls))
