"""How each material group of the head looks; no bpy.

The result folder names its material groups (the face model's, e.g. M_Face, M_Teeth,
M_EyeOcclusion) and carries the skin's UV albedo plus colour maps for some other groups
(iris, teeth, gums). Skin groups get the albedo; the others a Principled BSDF chosen by
name, with their map when the folder has it. The eye's helper shells
(occlusion, blend, tear film) exist for real-time eye shaders and would hide the eyes
under an opaque material, so they are made transparent. The sclera shell covers the
dark inner eyeball too; its cornea is made see-through with a generated texture
(`cornea_texture`), so the iris shows as in the photo.
"""

from dataclasses import dataclass

import numpy as np

SKIN_KEYWORDS = ("face", "head", "skin")


@dataclass(frozen=True)
class MaterialStyle:
    """Principled BSDF inputs: base_color linear RGB, roughness, alpha (1 opaque),
    whether the base color comes from the skin texture, whether a see-through
    cornea is cut out of it (the sclera), and which of the result's maps (role) gives
    the base colour instead (base_color is the fallback without one)."""

    base_color: tuple[float, float, float]
    roughness: float
    alpha: float
    textured: bool
    cornea: bool = False
    map_role: str | None = None


# (name keywords, lower-case) -> style; first match wins. Colours are plain choices
# (linear RGB), not measured values.
_STYLES: tuple[tuple[tuple[str, ...], MaterialStyle], ...] = (
    (SKIN_KEYWORDS, MaterialStyle((0.6, 0.45, 0.38), 0.5, 1.0, True)),
    (("occlusion", "blend", "lacrimal", "fluid"),
     MaterialStyle((1.0, 1.0, 1.0), 0.05, 0.0, False)),
    # The lashes are hair cards meant for an alpha-textured strand image, which the model
    # does not ship: opaque, they render as black bands around the eyes. Hidden until a
    # strand texture is generated.
    (("lash",), MaterialStyle((0.02, 0.015, 0.012), 0.6, 0.0, False)),
    (("iris",), MaterialStyle((0.09, 0.05, 0.025), 0.15, 1.0, False, map_role="iris")),
    (("sclera",), MaterialStyle((0.8, 0.78, 0.75), 0.1, 1.0, False, cornea=True)),
    # Enamel is glossier than the wet but softer gums.
    (("teeth", "tooth"), MaterialStyle((0.8, 0.76, 0.66), 0.2, 1.0, False, map_role="teeth")),
    (("gum", "tongue", "mouth"), MaterialStyle((0.45, 0.12, 0.12), 0.4, 1.0, False,
                                               map_role="gums")),
)
_DEFAULT = MaterialStyle((0.6, 0.6, 0.6), 0.5, 1.0, False)
_SCLERA_EDGE = np.array([0.8, 0.62, 0.6])  # sclera colour factor towards the back


def material_style(name: str) -> MaterialStyle:
    """The style for a material group name (case-insensitive keywords)."""
    lower = name.lower()
    for keywords, style in _STYLES:
        if any(k in lower for k in keywords):
            return style
    return _DEFAULT


def is_skin(name: str) -> bool:
    """Whether a material group shows the skin texture."""
    return material_style(name).textured


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding of linear values in [0, 1]."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear,
                    1.055 * np.power(linear, 1 / 2.4) - 0.055)


def cornea_texture(color: tuple[float, float, float], radius: float, size: int = 256,
                   edge: float = 0.15) -> np.ndarray:
    """(size, size, 4) float32 sRGB + alpha: the sclera colour, transparent inside the
    UV disc of `radius` around (0.5, 0.5), with a soft edge of edge * radius. Towards
    the back of the eyeball (where the eyelid corners meet it) the white turns a little
    darker and redder, as a real sclera does, so it is not flat."""
    centres = (np.arange(size) + 0.5) / size - 0.5
    distance = np.hypot(centres[None, :], centres[:, None])
    alpha = np.clip((distance - radius) / (edge * radius), 0.0, 1.0)
    towards_back = np.clip((distance - 1.2 * radius) / max(0.5 - 1.2 * radius, 1e-6), 0, 1)
    white = np.asarray(color, dtype=np.float64)
    linear = white + (towards_back[..., None] ** 1.5) * (white * _SCLERA_EDGE - white)
    rgba = np.empty((size, size, 4), dtype=np.float32)
    rgba[..., :3] = linear_to_srgb(linear)
    rgba[..., 3] = alpha
    return rgba
