"""Differentiable rasteriser on plain torch: camera, rasterise, interpolate, texture,
shading and silhouette antialiasing as pure functions (nvdiffrast-style), CPU and CUDA."""

from engine.render.antialias import antialias, triangle_neighbours
from engine.render.camera import (
    PinholeCamera,
    axis_angle_to_matrix,
    front_camera,
    matrix_to_axis_angle,
)
from engine.render.interpolate import interpolate, interpolate_face_varying
from engine.render.rasterize import Fragments, rasterize, signed_double_area, uv_screen_vertices
from engine.render.render import RenderOutput, render_textured
from engine.render.shading import (
    SH_UNIFORM_LIGHT,
    sh_basis,
    sh_shading,
    shade_sh,
    uniform_sh,
    vertex_normals,
)
from engine.render.texture import sample_texture

__all__ = [
    "SH_UNIFORM_LIGHT",
    "Fragments",
    "PinholeCamera",
    "RenderOutput",
    "antialias",
    "axis_angle_to_matrix",
    "front_camera",
    "interpolate",
    "interpolate_face_varying",
    "matrix_to_axis_angle",
    "rasterize",
    "render_textured",
    "sample_texture",
    "sh_basis",
    "sh_shading",
    "shade_sh",
    "signed_double_area",
    "triangle_neighbours",
    "uniform_sh",
    "uv_screen_vertices",
    "vertex_normals",
]
