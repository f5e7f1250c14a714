"""GANFit's identity and content losses (Gecer et al., CVPR 2019, eqs. 3-5).

identity: 1 - cos(F^n(I), F^n(I_R)) on the recognition network's embedding;
content:  sum_j ||F^j(I) - F^j(I_R)||_2 / numel(F^j) over a few inner feature maps;
the "l-hat id" term is the identity loss between the photo and a second render with
random pose, expression, lighting and camera but the fitted identity.

All losses return one value per batch element, (B,), and are differentiable w.r.t. the
render chips. The photo side is a fixed target: it is evaluated without gradients, once
per fit where the caller keeps an `IdentityTarget`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.identity.base import IdentityNetwork


@dataclass
class IdentityTarget:
    """The photo side of the losses, computed once.

    embedding: (B, D) L2-normalised photo embeddings; features: [(B, C_j, H_j, W_j)].
    """

    embedding: torch.Tensor
    features: list[torch.Tensor]

    def mean_embedding(self) -> torch.Tensor:
        """(1, D) normalised mean over the photos: one identity for several photos."""
        return F.normalize(self.embedding.mean(dim=0, keepdim=True), dim=1)


@torch.no_grad()
def identity_target(net: IdentityNetwork, photo_chips: torch.Tensor) -> IdentityTarget:
    """photo_chips (B, 3, S, S) in [0, 1] -> their embeddings and feature maps, detached."""
    features = net.features(photo_chips)
    return IdentityTarget(net.embed(photo_chips), [f.detach() for f in features])


def cosine_loss(target_embedding: torch.Tensor, render_embedding: torch.Tensor) -> torch.Tensor:
    """1 - cos between (B or 1, D) and (B, D) normalised embeddings -> (B,)."""
    return 1.0 - (target_embedding * render_embedding).sum(dim=1)


def identity_loss(
    net: IdentityNetwork, photo_chips: torch.Tensor, render_chips: torch.Tensor
) -> torch.Tensor:
    """1 - cos(F(photo), F(render)) for chips (B, 3, S, S) -> (B,)."""
    with torch.no_grad():
        target = net.embed(photo_chips)
    return cosine_loss(target, net.embed(render_chips))


def target_identity_loss(
    net: IdentityNetwork, target: IdentityTarget | torch.Tensor, render_chips: torch.Tensor
) -> torch.Tensor:
    """Identity loss of render chips (B, 3, S, S) against a stored photo embedding -> (B,).

    This is the randomised second render's term: the fitter renders the fitted identity
    with random pose/expression/lighting/camera, aligns that render with its own projected
    landmarks (`alignment_transform`), and compares it with the photo's embedding here.
    `target` is an IdentityTarget (its per-photo embeddings, or pass
    `target.mean_embedding()` to compare every render with one identity) or a (B or 1, D)
    normalised embedding tensor.
    """
    embedding = target.embedding if isinstance(target, IdentityTarget) else target
    return cosine_loss(embedding.detach(), net.embed(render_chips))


def feature_distance(
    photo_features: list[torch.Tensor], render_features: list[torch.Tensor]
) -> torch.Tensor:
    """sum_j ||P_j - R_j||_2 / numel(P_j[b]) over paired (B, C_j, H_j, W_j) maps -> (B,)."""
    total = torch.zeros(render_features[0].shape[0], device=render_features[0].device)
    for p, r in zip(photo_features, render_features, strict=True):
        diff = (p.detach() - r).flatten(1)
        # vector_norm's gradient is 0 (not NaN) where the maps coincide.
        total = total + torch.linalg.vector_norm(diff, dim=1) / diff.shape[1]
    return total


def content_loss(
    net: IdentityNetwork,
    photo_chips: torch.Tensor | IdentityTarget,
    render_chips: torch.Tensor,
) -> torch.Tensor:
    """GANFit's content loss between photo chips (or a stored target) and render chips -> (B,)."""
    if isinstance(photo_chips, IdentityTarget):
        photo_features = photo_chips.features
    else:
        with torch.no_grad():
            photo_features = net.features(photo_chips)
    return feature_distance(photo_features, net.features(render_chips))


def identity_and_content_loss(
    net: IdentityNetwork, target: IdentityTarget, render_chips: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(identity loss (B,), content loss (B,)) of render chips from one forward pass."""
    embedding, features = net.embed_and_features(render_chips)
    return cosine_loss(target.embedding.detach(), embedding), feature_distance(
        target.features, features)
