"""Face Reconstruction: one photo of a face in, a textured, animatable head in Blender out.

The add-on is two layers, like Blender's own glTF add-on:

- plain Python, importable and testable without Blender: `result` (read and check a
  "ganfit-result/1" folder, model-to-Blender axes), `protocol` (the engine's command
  lines, JSON-lines progress and exit codes), `process` (running the engine as a
  subprocess), `expressions` (ARKit names, slider groups) and `materials`;
- a thin bpy layer: `bl_scene` (mesh, materials, shape keys), `bl_export` (glb, FBX),
  `bl_jobs` (the running engine, polled from a timer), `bl_operators`, `bl_ui`, and
  `bl_register` (register/unregister over one tuple of classes).

This file imports nothing from bpy at module level, so `ganfit_blender.result` and the
other plain modules import outside Blender; the bpy layer loads in `register()`.
"""


def register() -> None:
    """Register every class, property and handler of the add-on (Blender calls this)."""
    from . import bl_register

    bl_register.register()


def unregister() -> None:
    """Stop any running engine and unregister everything `register` added."""
    from . import bl_register

    bl_register.unregister()
