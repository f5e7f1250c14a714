"""The iris texture (iris.png) in the iris groups' own UVs, from the photo.

The model's eyeball is two shells; the inner one (the iris groups) is unwrapped around
the UV centre (0.5, 0.5), the pupil in the middle. Each visible iris vertex of the first
view (in front of the eyelids by the z-buffer of the opaque head, facing the camera) is
looked up in the photo; the colours are pooled per UV radius (median, both eyes), since
a photo sees only part of each iris and an iris is close to radially uniform. The texture
is that radial profile, with faint radial fibres so it is not flat; radii the photo did
not see take the nearest seen radius; the pupil is black and the region beyond the
limbus (the hidden inner eyeball) dark.
"""

import numpy as np
import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.fit.state import FitState
from engine.render import PinholeCamera, rasterize, vertex_normals

IRIS_PNG = "iris.png"
IRIS_SIZE = 256
_OCCLUDERS = ("face", "head_neck", "mouth_socket", "eye_socket_left", "eye_socket_right",
              "teeth", "eyeball_left", "eyeball_right")
_BINS = 48
_DEPTH_BIAS_CM = 0.2
_DARK = np.array([0.02, 0.015, 0.012])  # hidden inner eyeball
_PUPIL = np.array([0.01, 0.01, 0.01])
_LIMBUS_JUMP = 1.4  # luminance ratio to the innermost iris ring that marks the sclera


def _iris_loops(model: FaceModel) -> Tensor:
    """(L',) loop indices of the iris material groups' polygons (both eyes)."""
    groups = [i for i, name in enumerate(model.material_names) if "iris" in name.lower()]
    polygons = torch.isin(model.polygon_materials,
                          torch.tensor(groups, device=model.polygon_materials.device))
    return polygons.repeat_interleave(model.polygon_sizes).nonzero().squeeze(1)


@torch.no_grad()
def iris_samples(model: FaceModel, photo: np.ndarray, vertices: Tensor,
                 camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """UV radius (S,) and photo colour (S,3) in [0,1] of the iris loops the photo sees.

    photo: (H,W,3) uint8; vertices (V,3) cm, posed as in the photo; camera: one view
    (batch 1) in the photo's pixels.
    """
    cam = camera.transform(vertices[None])
    screen = camera.project_camera_space(cam)[0]
    height, width = photo.shape[:2]
    occluders = torch.cat([model.region_triangles(p) for p in _OCCLUDERS])
    fragments = rasterize(screen[None], model.triangles[occluders], (height, width))
    loops = _iris_loops(model)
    vertex = model.polygon_vertices[loops]
    x, y = screen[vertex, 0], screen[vertex, 1]
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    xi, yi = x.round().long().clamp(0, width - 1), y.round().long().clamp(0, height - 1)
    depth = torch.where(fragments.triangle_id[0, yi, xi] >= 0, fragments.depth[0, yi, xi],
                        torch.inf)
    normals = vertex_normals(cam, model.triangles)[0, vertex]
    facing = (normals * -cam[0, vertex]).sum(-1) > 0
    # The iris lies under the cornea: it is seen where the nearest opaque surface at its
    # pixel is the eyeball itself (within the bias), not an eyelid.
    visible = inside & facing & (screen[vertex, 2] <= depth + _DEPTH_BIAS_CM)
    colour = torch.as_tensor(np.array(photo)).to(x.device)[yi[visible], xi[visible]].float() / 255
    radius = (model.loop_uvs[loops[visible]] - 0.5).norm(dim=-1)
    return radius.cpu().numpy(), colour.cpu().numpy()


def first_view_iris(model: FaceModel, photo: np.ndarray, state: FitState
                    ) -> np.ndarray | None:
    """iris.png's image for a fit: `iris_texture` of the first view's samples."""
    first = state.views(slice(0, 1))
    with torch.no_grad():
        vertices = model(first.identity[None], first.expression)[0]
    return iris_texture(*iris_samples(model, photo, vertices, first.camera()))


def radial_profile(radius: np.ndarray, colour: np.ndarray, bins: int = _BINS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(bins,3) median colour per UV-radius bin over [0, 0.5) and (bins,) whether the bin
    had samples; empty bins take the nearest filled bin's colour."""
    index = np.minimum((radius / 0.5 * bins).astype(int), bins - 1)
    profile = np.zeros((bins, 3))
    filled = np.zeros(bins, dtype=bool)
    for b in range(bins):
        here = colour[index == b]
        if len(here):
            profile[b], filled[b] = np.median(here, axis=0), True
    if filled.any():
        known = np.flatnonzero(filled)
        nearest = known[np.abs(np.arange(bins)[:, None] - known[None]).argmin(1)]
        profile = profile[nearest]
    return profile, filled


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def iris_texture(radius: np.ndarray, colour: np.ndarray, size: int = IRIS_SIZE,
                 seed: int = 0) -> np.ndarray | None:
    """(size,size,3) uint8 sRGB iris texture from samples (see `iris_samples`); None when
    the photo saw no iris.

    The iris ring runs from the innermost seen radius (inside it: the pupil, black) out
    to the limbus, where the photo turns much brighter (the sclera seen through the
    cornea); beyond it the hidden inner eyeball is dark.
    """
    if len(radius) == 0:
        return None
    profile, filled = radial_profile(radius, colour)
    seen = np.flatnonzero(filled)
    inner = seen[0]
    bright = seen[_luminance(profile[seen]) > _LIMBUS_JUMP * _luminance(profile[inner])]
    outer = bright[0] if len(bright) else seen[-1] + 1
    bins = len(profile)
    pupil_radius, limbus_radius = inner / bins * 0.5, outer / bins * 0.5
    centres = (np.arange(size) + 0.5) / size - 0.5
    u, v = np.meshgrid(centres, -centres)
    r = np.hypot(u, v)
    angle = np.arctan2(v, u)
    rgb = profile[np.clip((r / 0.5 * bins).astype(int), inner, outer - 1)]
    fibres = np.random.default_rng(seed).normal(0, 1, 180)
    streak = fibres[((angle + np.pi) / (2 * np.pi) * 180).astype(int) % 180]
    rgb = rgb * (1 + 0.08 * streak[..., None])
    pupil = np.clip((pupil_radius - r) / 0.01, 0, 1)[..., None]
    hidden = np.clip((r - limbus_radius) / 0.01, 0, 1)[..., None]
    rgb = rgb * (1 - pupil) * (1 - hidden) + _PUPIL * pupil + _DARK * hidden
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
