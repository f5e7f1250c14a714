"""Expression names: Apple ARKit's 52 blend shapes, and slider groups; no bpy.

The face model names its expressions ARKit-style with _L/_R suffixes (eyeBlink_L) and
splits two of ARKit's symmetric shapes (browInnerUp_L/_R, cheekPuff_L/_R). ARKit names
use Left/Right (eyeBlinkLeft) for the subject's own side, which is the model's side too
(the model's eyeBlink_L moves vertices at +X, the subject's left).
"""

from collections.abc import Sequence
from dataclasses import dataclass

# ARFaceAnchor.BlendShapeLocation, Apple developer documentation (ARKit), 52 names.
ARKIT_52: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
_ARKIT = frozenset(ARKIT_52)
_SIDES = {"_L": "Left", "_R": "Right"}

# Slider groups in panel order: (label, name prefixes, lower-case).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Brows", ("brow",)),
    ("Eyes", ("eye", "pupil")),
    ("Cheeks", ("cheek",)),
    ("Nose", ("nose",)),
    ("Jaw", ("jaw",)),
    ("Mouth", ("mouth", "tongue")),
)
OTHER_GROUP = "Other"


def arkit_name(name: str) -> str | None:
    """The ARKit name a model expression contributes to, or None if it has none.

    eyeBlink_L -> eyeBlinkLeft; jawOpen -> jawOpen; browInnerUp_L -> browInnerUp (ARKit
    has one symmetric shape where the model has two halves).
    """
    if name in _ARKIT:
        return name
    base, suffix = name[:-2], name[-2:]
    if suffix in _SIDES:
        if base + _SIDES[suffix] in _ARKIT:
            return base + _SIDES[suffix]
        if base in _ARKIT:
            return base
    return None


@dataclass(frozen=True)
class MorphPlan:
    """How the model's shape keys become exported morph targets.

    targets: (output name, source key names) in export order; a target with several
    sources is their sum (both halves of a split shape at once). missing: ARKit names no
    model expression provides. extra: model expressions kept under their own names
    because ARKit has no such shape.
    """

    targets: tuple[tuple[str, tuple[str, ...]], ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]


def model_plan(names: Sequence[str]) -> MorphPlan:
    """Export every expression under the model's own name."""
    return MorphPlan(tuple((n, (n,)) for n in names), (), ())


def arkit_plan(names: Sequence[str]) -> MorphPlan:
    """Rename to ARKit, merging split halves; ARKit-named targets come first, in ARKit's
    order, then the model's extra expressions in model order."""
    sources: dict[str, list[str]] = {}
    extra = []
    for name in names:
        target = arkit_name(name)
        if target is None:
            extra.append(name)
        else:
            sources.setdefault(target, []).append(name)
    targets = [(a, tuple(sources[a])) for a in ARKIT_52 if a in sources]
    targets += [(n, (n,)) for n in extra]
    missing = tuple(a for a in ARKIT_52 if a not in sources)
    return MorphPlan(tuple(targets), missing, tuple(extra))


def expression_group(name: str) -> str:
    """The panel group of an expression name (GROUPS labels, or OTHER_GROUP)."""
    lower = name.lower()
    for label, prefixes in GROUPS:
        if lower.startswith(prefixes):
            return label
    return OTHER_GROUP


def grouped(names: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(group label, names in model order) for every non-empty group, in panel order."""
    by_group: dict[str, list[str]] = {}
    for name in names:
        by_group.setdefault(expression_group(name), []).append(name)
    order = [label for label, _ in GROUPS] + [OTHER_GROUP]
    return [(label, by_group[label]) for label in order if label in by_group]
