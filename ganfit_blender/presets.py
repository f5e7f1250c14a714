"""Export presets per target engine; no bpy.

Each preset fixes the file format, its axes and units, how the file is compacted and
whether the lower levels of detail go in. What every preset shares: morph targets
without normals (the engines recompute them; with normals the file is twice the size),
default morph weights 0, JPEG images for colour maps.

- glTF (generic): a plain .glb any glTF 2.0 reader takes, Blender's own included.
- FBX (generic): FBX with blend shapes in Blender's default FBX axes (Y up, -Z forward).
- Unity: FBX, Y up, -Z forward, transforms applied so the head imports unrotated at scale
  1; LODs named NAME_LOD0..2, which Unity's importer turns into an LOD Group.
- Unreal: FBX in centimetres with Z up and -Y forward (Unreal's own axes), tangent
  space written for the normal map; LODs named NAME_LOD0..2.
- Godot: a plain .glb: no Draco and no meshopt (stock Godot rejects both); Godot makes
  its own LODs on import.
- Web: .glb quantised and meshopt-compressed (EXT_meshopt_compression, which packs the
  morph targets too) by gltfpack, textures as KTX2 (KHR_texture_basisu, Basis Universal
  ETC1S: compressed on the GPU too) when the basisu encoder is found; three.js needs
  MeshoptDecoder and KTX2Loader for it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """How one target gets its file.

    fmt "GLB" or "FBX"; lods: lower levels of detail go into the file; meshopt: gltfpack
    quantises and compresses the glb; ktx2: textures as KTX2/BasisU (needs basisu,
    see ktx2.py); fbx_*: the FBX exporter's axes and scale option; tangents: FBX tangent
    space (for normal maps)."""

    key: str
    label: str
    description: str
    fmt: str
    lods: bool = False
    meshopt: bool = False
    ktx2: bool = False
    fbx_forward: str = "-Z"
    fbx_up: str = "Y"
    fbx_scale: str = "FBX_SCALE_NONE"
    fbx_bake_space: bool = False
    tangents: bool = False

    @property
    def extension(self) -> str:
        return ".glb" if self.fmt == "GLB" else ".fbx"


PRESETS: tuple[Preset, ...] = (
    Preset("GLTF", "glTF", "Plain glTF binary for any glTF 2.0 reader", "GLB"),
    Preset("FBX", "FBX", "FBX with blend shapes, Blender's default axes", "FBX"),
    Preset("UNITY", "Unity", "FBX, Y up, scale 1, LODs as an LOD Group", "FBX", lods=True,
           fbx_scale="FBX_SCALE_UNITS", fbx_bake_space=True, tangents=True),
    Preset("UNREAL", "Unreal", "FBX in centimetres, Z up, tangents, LODs", "FBX", lods=True,
           fbx_forward="-Y", fbx_up="Z", fbx_scale="FBX_SCALE_UNITS", tangents=True),
    Preset("GODOT", "Godot", "Plain glTF binary: no Draco, no meshopt", "GLB"),
    Preset("WEB", "Web", "glTF binary, quantised and meshopt-compressed (three.js)", "GLB",
           meshopt=True, ktx2=True),
)
BY_KEY = {p.key: p for p in PRESETS}
# Whether the lower levels of detail go into the file: Blender enum items.
LOD_CHOICES = (
    ("PRESET", "LODs as the target uses them", "Unity and Unreal: with LODs; others without"),
    ("YES", "With LODs", "Add NAME_LOD1 and NAME_LOD2 (about 50% and 15% triangles)"),
    ("NO", "Without LODs", "The full head only"),
)
DEFAULT = "GLTF"


def preset(key: str) -> Preset:
    """The preset of a key (case-insensitive); ValueError names the known ones."""
    try:
        return BY_KEY[key.upper()]
    except KeyError:
        raise ValueError(f"unknown preset {key!r}; known: "
                         f"{', '.join(p.key.lower() for p in PRESETS)}") from None


def enum_items() -> list[tuple[str, str, str]]:
    """(key, label, description) for a Blender EnumProperty."""
    return [(p.key, p.label, p.description) for p in PRESETS]


def lod_name(head: str, level: int) -> str:
    """The name engines recognise for level `level` of an LOD group (NAME_LOD0 ...)."""
    return f"{head}_LOD{level}"
