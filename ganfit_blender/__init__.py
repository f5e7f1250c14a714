"""Face Reconstruction: one photo of a face in, a textured, animatable head in Blender out.

The add-on is two layers, like Blender's own glTF add-on:

- plain Python, importable and testable without Blender: `result` (read and check a
  "ganfit-result/1" folder, model-to-Blender axes), `protocol` (the engine's command
  lines, JSON-lines progress and exit codes), `process` (running the engine as a
  subprocess), `expressions` (ARKit names, slider groups), `arkit` (exactly ARKit's 52,
  tongueOut), `presets` (export targets), `gltfpack` (meshopt post-process), `ktx2`
  (KTX2 textures by basisu) and `materials`;
- a thin bpy layer: `bl_scene` (mesh, materials, shape keys), `bl_maps` (normal,
  roughness, AO wiring), `bl_export` (glb, FBX, LODs),
  `bl_jobs` (the running engine, polled from a timer), `bl_operators`, `bl_ui`, and
  `bl_register` (register/unregister over one tuple of classes).

This file imports nothing from bpy at module level, so `ganfit_blender.result` and the
other plain modules import outside Blender; the bpy layer loads in `register()`. Where
Blender's Python lacks numpy, `bl_no_numpy` registers a panel saying how to install it.

The same package is Blender 4.2+'s extension and, with a `bl_info` that build_addon.py
writes into this file, the legacy add-on for Blender 3.4 to 4.1.
"""


def _layer():
    """The bpy layer to register: the add-on, or the numpy advice where numpy is missing."""
    try:
        import numpy  # noqa: F401  (the add-on's only dependency beyond Blender)
    except ImportError:
        from . import bl_no_numpy

        return bl_no_numpy
    from . import bl_register

    return bl_register


def register() -> None:
    """Register every class, property and handler of the add-on (Blender calls this)."""
    _layer().register()


def unregister() -> None:
    """Stop any running engine and unregister everything `register` added."""
    _layer().unregister()
