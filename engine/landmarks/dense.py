"""MediaPipe's 478 face-mesh points as points on ICT-FaceKit's surface (dense landmarks).

The table `mediapipe_ict.json` beside this module (built by scripts/register_mediapipe.py,
derived from MediaPipe's Apache-2.0 canonical face mesh; provenance inside it) places each
of the 468 mesh points (irises excluded: they move with the gaze, which is not fitted) on
ICT's front-face surface as a triangle (three vertex ids) and barycentric weights. Its
"calibrated" part moves each point to where the project's detector puts it on renders of
known faces (the registration alone sits ~5% of the eye distance off). The face-oval points
lie on the silhouette in most poses, so they are not fitted as fixed surface points (the
68-point jaw contour slides instead).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

TABLE_PATH = Path(__file__).with_name("mediapipe_ict.json")


@dataclass(frozen=True)
class DenseCorrespondence:
    """P fitted mesh points.

    points: (P,) indices into MediaPipe's 478 output points.
    vertices: (P, 3) ICT vertex ids of each point's triangle.
    barycentric: (P, 3) weights of those vertices (rows sum to 1).
    """

    points: np.ndarray
    vertices: np.ndarray
    barycentric: np.ndarray

    def surface(self, vertices: Tensor) -> Tensor:
        """(N, P, 3) points on the surface of (N, V, 3) model vertices (any V covering the
        ids, e.g. the front-face subset)."""
        ids = torch.as_tensor(self.vertices, device=vertices.device)
        weights = torch.as_tensor(self.barycentric, dtype=vertices.dtype, device=vertices.device)
        return (vertices[:, ids] * weights[None, :, :, None]).sum(2)


@lru_cache(maxsize=1)
def read_table(path: Path = TABLE_PATH) -> dict:
    """The registration table as stored (see scripts/register_mediapipe.py)."""
    return json.loads(path.read_text())


def dense_correspondence(include_outline: bool = False, calibrated: bool = True
                         ) -> DenseCorrespondence:
    """The fitted points: all 468 mesh points but the face oval (unless asked for), where
    the detector puts them (`calibrated`, when the table has it) or where the geometric
    registration does."""
    table = read_table()
    source = table.get("calibrated", table) if calibrated else table
    vertices = np.array(source["vertices"], dtype=np.int64)
    keep = np.ones(len(vertices), dtype=bool)
    if not include_outline:
        keep[table["outline"]] = False
    points = np.flatnonzero(keep)
    return DenseCorrespondence(points, vertices[points],
                               np.array(source["barycentric"], dtype=np.float64)[points])
