"""Exactly Apple ARKit's 52 blend shapes from the model's expressions; no bpy.

The face model has 51 of ARKit's shapes once its split halves are merged (expressions.py);
`tongueOut` it lacks, so it is authored here from the mesh: the tongue (the part of the
gums-and-tongue mesh that jawOpen carries with the lower jaw, away from the teeth, so not
the palate and not the gums) slides forward and a little down, out past the lips, with
part of jawOpen so that the mouth opens for it, as in ARKit's reference pose.
The model's extra expressions (PupilDilate, cheekRaiser) have no ARKit name and are left
out, so an ARKit export has the 52 names in ARKit's order and nothing else.

Geometry here is in the model's axes and units (cm, Y up, face looking along +Z).
"""

from collections.abc import Sequence

import numpy as np

from .expressions import ARKIT_52, MorphPlan, arkit_plan

TONGUE_OUT = "tongueOut"
# Share of jawOpen in tongueOut: the mouth opens enough for the tongue to pass the teeth.
JAW_SHARE = 0.5
# How far the tongue tip moves (cm): forward past the lips, and down onto the lower lip.
TIP_FORWARD = 4.5
TIP_DOWN = 0.4
# The tongue is the gums-and-tongue mesh at least this far from every tooth (cm: ramp).
_AWAY_FROM_TEETH = (0.3, 0.8)
# ... and carried by jawOpen: moving at least this share of the part's largest jawOpen
# offset (ramp); the palate and upper gums do not move with the jaw at all.
_WITH_JAW = (0.2, 0.4)


def smoothstep(x: np.ndarray, edge0: float, edge1: float) -> np.ndarray:
    """0 below edge0, 1 above edge1, a smooth cubic ramp between."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _nearest_distance(points: np.ndarray, others: np.ndarray, chunk: int = 512) -> np.ndarray:
    """(N,) distance from each of points (N,3) to the nearest of others (M,3)."""
    out = np.empty(len(points), dtype=np.float64)
    for start in range(0, len(points), chunk):
        block = points[start:start + chunk, None, :] - others[None, :, :]
        out[start:start + chunk] = np.sqrt(np.min(np.einsum("nmk,nmk->nm", block, block), 1))
    return out


def tongue_weights(vertices: np.ndarray, tongue_part: np.ndarray, teeth: np.ndarray,
                   jaw_open: np.ndarray) -> np.ndarray:
    """(V,) how much each vertex belongs to the tongue, 0..1.

    vertices (V,3) cm; tongue_part (V,) bool: the gums-and-tongue mesh; teeth (V,) bool;
    jaw_open (V,3) the jawOpen offsets.
    """
    weights = np.zeros(len(vertices))
    if not tongue_part.any() or not teeth.any():
        return weights
    away = smoothstep(_nearest_distance(vertices[tongue_part], vertices[teeth]),
                      *_AWAY_FROM_TEETH)
    moved = np.linalg.norm(jaw_open[tongue_part], axis=1)
    with_jaw = smoothstep(moved / max(float(moved.max()), 1e-9), *_WITH_JAW)
    weights[tongue_part] = away * with_jaw
    return weights


def tongue_out_offsets(vertices: np.ndarray, weights: np.ndarray,
                       jaw_open: np.ndarray) -> np.ndarray:
    """(V,3) the tongueOut shape's offsets (cm) from the neutral vertices (V,3).

    weights (V,) from `tongue_weights`; jaw_open (V,3) the jawOpen offsets. The tongue
    moves most at its tip (front) and not at all at its root, so it stretches out.
    """
    offsets = JAW_SHARE * jaw_open.astype(np.float64)
    tongue = weights > 0
    if not tongue.any():
        return offsets.astype(np.float32)
    z = vertices[tongue, 2]
    along = smoothstep(z, z.min(), z.max())  # 0 at the root, 1 at the tip
    move = weights[tongue] * along
    offsets[tongue, 2] += TIP_FORWARD * move
    offsets[tongue, 1] -= TIP_DOWN * move
    return offsets.astype(np.float32)


def exact_plan(names: Sequence[str]) -> tuple[MorphPlan, tuple[str, ...]]:
    """The ARKit plan with only ARKit's names, in ARKit's order, and the model names it
    leaves out (no ARKit shape). `missing` lists ARKit names no source provides."""
    plan = arkit_plan(names)
    targets = tuple((t, s) for t, s in plan.targets if t in ARKIT_52)
    return MorphPlan(targets, plan.missing, ()), plan.extra
