"""Alignment: transforms put landmarks on the template; the warp is a correct resampling."""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.identity.align import (
    ARCFACE_TEMPLATE,
    DLIB_TEMPLATE,
    alignment_transform,
    dlib_chip_transform,
    similarity_lstsq,
    transform_points,
    warp_to_chip,
)


def _similarity(scale: float, angle: float, tx: float, ty: float) -> torch.Tensor:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return torch.tensor([[[c, -s, tx], [s, c, ty]]], dtype=torch.float64)


def _landmarks_from_template(template, chip_to_image: torch.Tensor) -> torch.Tensor:
    """(1, 68, 2) landmarks whose template groups sit exactly on chip_to_image(template)."""
    rng = np.random.default_rng(1)
    lm = torch.from_numpy(rng.uniform(100, 300, (1, 68, 2)))
    image_pts = transform_points(chip_to_image, template.target().double()[None])
    for (group, point) in zip(template.groups, image_pts[0], strict=True):
        lm[0, list(group)] = point
    return lm


def test_arcface_alignment_puts_landmarks_on_template():
    chip_to_image = _similarity(2.3, 0.3, 140.0, 95.0)
    lm = _landmarks_from_template(ARCFACE_TEMPLATE, chip_to_image)
    t = alignment_transform(lm, ARCFACE_TEMPLATE)
    mapped = transform_points(t, ARCFACE_TEMPLATE.source_points(lm))
    err = (mapped - ARCFACE_TEMPLATE.target().double()).norm(dim=-1).max()
    assert err < 1e-9
    # and the transform is the inverse of the one that made the landmarks
    p = torch.tensor([[[5.0, 7.0]]], dtype=torch.float64)
    torch.testing.assert_close(transform_points(t, transform_points(chip_to_image, p)), p)


def test_dlib_alignment_follows_dlibs_chip_framing():
    # dlib frames the chip with a rectangle of side size*scale - 1 image pixels whose corner
    # pixels become chip pixels 0 and size-1, so a template point q lands at
    # (S-1)/2 + scale (S-1) / (S scale - 1) (q - S/2), within ~1 px of q.
    size = DLIB_TEMPLATE.size
    q = DLIB_TEMPLATE.target().double()
    for scale in (0.5, 1.0, 3.0):
        chip_to_image = _similarity(scale, -0.2, 60.0, 40.0)
        lm = _landmarks_from_template(DLIB_TEMPLATE, chip_to_image)
        t = alignment_transform(lm, DLIB_TEMPLATE)
        mapped = transform_points(t, DLIB_TEMPLATE.source_points(lm))[0]
        expected = (size - 1) / 2 + scale * (size - 1) / (size * scale - 1) * (q - size / 2)
        torch.testing.assert_close(mapped, expected, atol=1e-9, rtol=0)
        assert (mapped - q).norm(dim=-1).max() < 1.1


def test_lstsq_recovers_a_noisy_similarity():
    rng = np.random.default_rng(2)
    src = torch.from_numpy(rng.uniform(0, 100, (3, 20, 2)))
    truth = _similarity(0.7, 1.1, -4.0, 9.0).expand(3, -1, -1)
    dst = transform_points(truth, src) + torch.from_numpy(rng.normal(0, 0.01, (3, 20, 2)))
    fit = similarity_lstsq(src, dst)
    torch.testing.assert_close(fit[:, :, :2], truth[:, :, :2], atol=2e-4, rtol=0)
    torch.testing.assert_close(fit[:, :, 2], truth[:, :, 2], atol=2e-2, rtol=0)


def test_identity_warp_returns_the_image():
    img = torch.rand(2, 3, 40, 40, dtype=torch.float64)
    eye = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]], dtype=torch.float64).expand(2, -1, -1)
    torch.testing.assert_close(warp_to_chip(img, eye, 40), img)


def test_warp_samples_the_image_where_the_transform_says():
    # A smooth analytic image: chip pixel q must hold f(T^-1 q) (bilinear error only).
    h, w = 200, 240
    v, u = torch.meshgrid(torch.arange(h).double(), torch.arange(w).double(), indexing="ij")

    def f(u, v):
        return torch.sin(u / 13.0) * torch.cos(v / 17.0)

    img = f(u, v)[None, None]
    t = _similarity(0.8, 0.4, -20.0, -10.0)  # image -> chip
    chip = warp_to_chip(img, t, 64)
    inv_lin = torch.linalg.inv(t[0, :, :2])
    qy, qx = torch.meshgrid(torch.arange(64).double(), torch.arange(64).double(), indexing="ij")
    q = torch.stack([qx, qy], -1).reshape(-1, 2) - t[0, :, 2]
    src = q @ inv_lin.T
    inside = (src[:, 0] > 0) & (src[:, 0] < w - 1) & (src[:, 1] > 0) & (src[:, 1] < h - 1)
    expected = f(src[:, 0], src[:, 1])
    got = chip.reshape(-1)
    assert inside.sum() > 1000
    assert (got[inside] - expected[inside]).abs().max() < 3e-3


def test_antialiased_warp_averages_a_large_image():
    # A 1-pixel checkerboard shrunk 4x must come out grey, not aliased to 0 or 1.
    board = ((torch.arange(400)[:, None] + torch.arange(400)[None]) % 2).double()[None, None]
    t = _similarity(0.25, 0.0, 0.0, 0.0)
    chip = warp_to_chip(board, t, 90)
    assert (chip[..., 5:-5, 5:-5] - 0.5).abs().max() < 0.05


def test_gradients_reach_image_and_landmarks():
    rng = np.random.default_rng(3)
    img = torch.rand(1, 3, 60, 60, dtype=torch.float64, requires_grad=True)
    lm = torch.from_numpy(rng.uniform(10, 50, (1, 68, 2))).requires_grad_(True)

    def f(lm, img):
        return warp_to_chip(img, alignment_transform(lm, ARCFACE_TEMPLATE), 16, antialias=False)

    assert torch.autograd.gradcheck(f, (lm, img), eps=1e-6, atol=1e-5, fast_mode=True)


def test_dlib_chip_geometry_matches_dlib_exactly(faces):
    # Same five points as dlib's own predictor: the chips must agree to dlib's uint8
    # truncation (dlib casts the bilinear value down).
    for face in faces[:3]:
        t = dlib_chip_transform(
            torch.from_numpy(face.landmarks5)[None], DLIB_TEMPLATE.target().double(), 150
        )
        ours = warp_to_chip(face.image_tensor().double() * 255, t, 150)
        ref = torch.from_numpy(face.chip).permute(2, 0, 1)[None].double()
        diff = (ours.floor() - ref).abs()
        assert diff.mean() < 0.05 and diff.max() <= 1.0, face.name


def test_chip_from_68_landmarks_embeds_like_dlibs_chip(faces, dlib_net):
    # The 68-landmark route (what the fitter uses) vs dlib's 5-point chip, astronaut.
    face = faces[0]
    t = alignment_transform(torch.from_numpy(face.landmarks68)[None], DLIB_TEMPLATE)
    ours = warp_to_chip(face.image_tensor().double(), t, 150).float()
    with torch.no_grad():
        e = dlib_net.embed(torch.cat([ours, face.chip_tensor()]))
    assert (e[0] @ e[1]).item() > 0.995


def test_arcface_transform_equals_insightfaces_estimate(faces):
    # insightface's norm_crop estimates the same similarity with skimage (Umeyama).
    from skimage.transform import SimilarityTransform

    lm = torch.from_numpy(faces[0].landmarks68)[None]
    ours = alignment_transform(lm, ARCFACE_TEMPLATE)[0].numpy()
    src = ARCFACE_TEMPLATE.source_points(lm)[0].numpy()
    ref = SimilarityTransform.from_estimate(src, np.array(ARCFACE_TEMPLATE.points))
    np.testing.assert_allclose(ours, ref.params[:2], atol=1e-6)
