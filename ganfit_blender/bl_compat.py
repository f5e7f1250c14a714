"""What differs between the Blender versions the add-on runs in (3.4 to 5.x), in one
place: each function uses the current API where it exists and the older one otherwise.

Checked against Debian's Blender 3.4.1 (legacy add-on zip) and the bpy 5.0.1 module.
"""

import bpy


def online_access() -> bool:
    """Whether the add-on may download. Blender < 4.2 has no such setting (add-ons were
    trusted to go online), so there the artist's click on "Download models" decides."""
    return bool(getattr(bpy.app, "online_access", True))


def set_polygon_sizes(mesh: bpy.types.Mesh, sizes) -> None:
    """Blender < 4.0 stores each polygon's loop count and needs it set (int32 array,
    one per polygon); later versions derive it from the loop starts."""
    if not bpy.types.MeshPolygon.bl_rna.properties["loop_total"].is_readonly:
        mesh.polygons.foreach_set("loop_total", sizes)


def shade_smooth(mesh: bpy.types.Mesh) -> None:
    """Smooth shading on every polygon (Mesh.shade_smooth is newer than 3.4)."""
    if hasattr(mesh, "shade_smooth"):
        mesh.shade_smooth()
    else:
        mesh.polygons.foreach_set("use_smooth", [True] * len(mesh.polygons))


def set_blended(material: bpy.types.Material) -> None:
    """Render the material with alpha blending (EEVEE Next's render method, or the
    blend mode of Blender < 4.2)."""
    if "surface_render_method" in material.bl_rna.properties:
        material.surface_render_method = "BLENDED"
    else:
        material.blend_method = "BLEND"


def progress_bar(layout: bpy.types.UILayout, fraction: float, text: str) -> None:
    """A progress bar (UILayout.progress, Blender 4.0+), else the text with a percentage."""
    if "progress" in layout.bl_rna.functions:
        layout.progress(factor=fraction, type="BAR", text=text)
    else:
        layout.label(text=f"{text} ({fraction:.0%})", icon="TIME")


def foldout(layout: bpy.types.UILayout, idname: str, title: str, default_closed: bool = True):
    """A collapsible sub-layout (UILayout.panel, Blender 4.1+): its body, or None while
    folded. Older versions show a box with a header, always open."""
    if "panel" in layout.bl_rna.functions:
        header, body = layout.panel(idname, default_closed=default_closed)
        header.label(text=title)
        return body
    box = layout.box()
    box.label(text=title)
    return box
