"""Named parts of the ICT-FaceKit mesh, as vertex and polygon index ranges.

Source: the ICT-FaceKit README's topology tables (inclusive ranges there, half-open here).
"""

# name: ((first vertex, end vertex), (first polygon, end polygon)), end exclusive.
PARTS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "face": ((0, 9409), (0, 9230)),
    "narrow_face": ((0, 6706), (0, 6560)),
    "head_neck": ((9409, 11248), (9230, 11144)),
    "mouth_socket": ((11248, 13294), (11144, 13226)),
    "eye_socket_left": ((13294, 13678), (13226, 13630)),
    "eye_socket_right": ((13678, 14062), (13630, 14034)),
    "gums_tongue": ((14062, 17039), (14034, 17006)),
    "teeth": ((17039, 21451), (17006, 21496)),
    "eyeball_left": ((21451, 23021), (21496, 23094)),
    "eyeball_right": ((23021, 24591), (23094, 24692)),
    "lacrimal_fluid": ((24591, 24999), (24692, 25018)),
    "eye_blend": ((24999, 25047), (25018, 25048)),
    "eye_occlusion": ((25047, 25351), (25048, 25304)),
    "eyelashes": ((25351, 26719), (25304, 26384)),
}

# Unions used by the fitter and the renderer.
GROUPS: dict[str, tuple[str, ...]] = {
    "eyes": ("eyeball_left", "eyeball_right"),
    "skin": ("face", "head_neck"),
    "visible": ("face", "head_neck", "eyeball_left", "eyeball_right"),
}


def part_names(name: str) -> tuple[str, ...]:
    """The parts a region name stands for; KeyError for an unknown name."""
    if name in PARTS:
        return (name,)
    if name in GROUPS:
        return GROUPS[name]
    raise KeyError(f"unknown region {name!r}; known: {sorted(PARTS) + sorted(GROUPS)}")
