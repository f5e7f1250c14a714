"""Identity and content losses on real faces through dlib's network."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from engine.identity import (
    content_loss,
    identity_loss,
    identity_target,
    target_identity_loss,
)


def _lfw_faces(n: int) -> torch.Tensor:
    """n different people: skimage's LFW subset (25x25 grey), upscaled to 150 px RGB."""
    from skimage.data import lfw_subset

    faces = torch.from_numpy(lfw_subset()[:n]).float()[:, None].expand(-1, 3, -1, -1)
    return F.interpolate(faces, size=(150, 150), mode="bilinear", align_corners=False)


def test_identical_images_give_zero_loss(faces, dlib_net):
    chips = torch.cat([f.chip_tensor() for f in faces[:2]])
    assert identity_loss(dlib_net, chips, chips).abs().max() < 1e-5
    assert content_loss(dlib_net, chips, chips).abs().max() == 0.0


def test_different_people_give_larger_losses_than_the_same_person(faces, dlib_net):
    photo = faces[0].chip_tensor()
    same = torch.cat([f.chip_tensor() for f in faces[1:]])  # astronaut, altered photos
    others = _lfw_faces(20)
    same_id = identity_loss(dlib_net, photo.expand(len(same), -1, -1, -1), same)
    other_id = identity_loss(dlib_net, photo.expand(len(others), -1, -1, -1), others)
    assert same_id.max() < other_id.min(), (same_id, other_id)
    same_c = content_loss(dlib_net, photo.expand(len(same), -1, -1, -1), same)
    other_c = content_loss(dlib_net, photo.expand(len(others), -1, -1, -1), others)
    assert same_c.mean() < other_c.mean()


def test_gradients_reach_the_render_and_are_right(faces, dlib_net):
    net = copy.deepcopy(dlib_net).double()
    photo = faces[0].chip_tensor().double()
    # a little noise breaks the exact max-pool ties of flat (black) chip borders, where the
    # loss has kinks and a finite difference is not a derivative
    noise = torch.rand((1, 3, 150, 150), generator=torch.Generator().manual_seed(1)).double()
    render = (faces[3].chip_tensor().double() + 0.02 * noise).requires_grad_(True)
    target = identity_target(net, photo)

    def total(x: torch.Tensor) -> torch.Tensor:
        return (target_identity_loss(net, target, x) + content_loss(net, target, x)).sum()

    total(render).backward()
    grad = render.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # directional derivative along a random direction vs a central difference
    direction = torch.randn(render.shape, generator=torch.Generator().manual_seed(0)).double()
    eps = 1e-9  # tiny: ReLU kinks make larger steps inexact
    with torch.no_grad():
        numeric = (total(render + eps * direction) - total(render - eps * direction)) / (2 * eps)
    analytic = (grad * direction).sum()
    assert abs(analytic - numeric) < 1e-3 * abs(numeric) + 1e-9, (analytic, numeric)


def test_randomised_render_term_matches_identity_loss(faces, dlib_net):
    photos = torch.cat([f.chip_tensor() for f in faces[:2]])
    renders = torch.cat([f.chip_tensor() for f in faces[2:4]])
    target = identity_target(dlib_net, photos)
    torch.testing.assert_close(
        target_identity_loss(dlib_net, target, renders), identity_loss(dlib_net, photos, renders)
    )
    # one identity for several photos: every render is compared with the mean embedding
    mean = target.mean_embedding()
    assert mean.shape == (1, 128) and torch.isclose(mean.norm(), torch.tensor(1.0))
    assert target_identity_loss(dlib_net, mean, renders).shape == (2,)
