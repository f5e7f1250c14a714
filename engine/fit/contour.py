"""Jaw-line landmarks that slide along the face's silhouette.

iBUG's jaw points 0-16 lie on the visible outline of the face, which moves over the
cheek as the head turns; a fixed mesh vertex per point would pull a turned face out of
shape. For the side points (0-5 and 11-16) each landmark gets a band of candidate
vertices across the cheek at its height, and at every step the candidate lying
furthest out in the image (on the silhouette) is used. The chin points 6-10 stay fixed.
"""

import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.render import PinholeCamera

SLIDING_JAW = (0, 1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 16)
_BAND_CM = 0.5  # half-height of a landmark's band of candidates
_FACE_VERTICES = 9409  # the front face region (ICT-FaceKit README)


class JawContour:
    """Candidate vertices per sliding jaw landmark.

    candidates: (J, C) long vertex ids (padded with the landmark's own vertex);
    outward: (J,) +1 or -1, the model-X direction that points away from the face.
    """

    def __init__(self, model: FaceModel):
        neutral = model.neutral[:_FACE_VERTICES]
        landmark_ids = model.landmark_vertices[list(SLIDING_JAW)]
        rows: list[Tensor] = []
        for vertex in landmark_ids.tolist():
            p = model.neutral[vertex]
            side = torch.sign(p[0])
            band = ((neutral[:, 1] - p[1]).abs() < _BAND_CM) & (neutral[:, 0] * side > 0) \
                & (neutral[:, 0].abs() >= 0.5 * p[0].abs())
            ids = torch.nonzero(band).squeeze(1)
            rows.append(torch.cat([torch.tensor([vertex], device=ids.device), ids]))
        width = max(len(r) for r in rows)
        self.jaw_index = torch.tensor(SLIDING_JAW, device=neutral.device)
        self.candidates = torch.stack([
            torch.cat([r, r[:1].expand(width - len(r))]) for r in rows])
        self.outward = torch.sign(model.neutral[landmark_ids, 0])

    @torch.no_grad()
    def select(self, points: Tensor, camera: PinholeCamera, landmark_vertices: Tensor) -> Tensor:
        """(N, 68) vertex ids per view with the sliding jaw points on the silhouette.

        points: (N, V, 3) model-space vertices, indexable by vertex id.
        landmark_vertices: (68,) the model's fixed landmark vertices.
        """
        n = points.shape[0]
        cand = points[:, self.candidates.reshape(-1)]  # (N, J*C, 3)
        uv = camera.project(cand)[..., :2].reshape(n, *self.candidates.shape, 2)
        # image direction of the model's X axis (first column of R), per view
        x_axis = camera.rotation[:, :2, 0]
        direction = x_axis[:, None, :] * self.outward[None, :, None]  # (N, J, 2)
        score = (uv * direction[:, :, None, :]).sum(-1)  # (N, J, C)
        best = score.argmax(dim=-1)  # (N, J)
        chosen = self.candidates[None].expand(n, -1, -1).gather(2, best[..., None])[..., 0]
        ids = landmark_vertices[None].expand(n, -1).clone()
        ids[:, self.jaw_index] = chosen
        return ids
