"""engine/facemodel/geometry.py: the similarity fit recovers known transforms and never
reflects; closest points on triangles are the true nearest points (checked against an
independent optimality condition and a brute-force search)."""

import numpy as np
import pytest

from engine.facemodel.geometry import (
    Similarity,
    closest_among,
    closest_on_triangles,
    closest_point_barycentrics,
    fit_similarity,
)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("seed", range(5))
def test_similarity_recovers_a_known_transform(seed):
    rng = np.random.default_rng(seed)
    rotation, scale = _random_rotation(rng), rng.uniform(0.2, 5.0)
    translation = rng.normal(scale=10.0, size=3)
    source = rng.normal(size=(50, 3))
    target = scale * source @ rotation.T + translation
    fit = fit_similarity(source, target)
    assert fit.scale == pytest.approx(scale, rel=1e-10)
    np.testing.assert_allclose(fit.rotation, rotation, atol=1e-10)
    np.testing.assert_allclose(fit.translation, translation, atol=1e-9)
    np.testing.assert_allclose(fit.apply(source), target, atol=1e-9)


def test_similarity_under_noise_is_close_and_beats_the_truth_on_its_own_data():
    rng = np.random.default_rng(7)
    rotation, scale, translation = _random_rotation(rng), 1.7, np.array([3.0, -1.0, 2.0])
    source = rng.normal(size=(2000, 3))
    target = scale * source @ rotation.T + translation + rng.normal(scale=0.05,
                                                                    size=source.shape)
    fit = fit_similarity(source, target)
    assert fit.scale == pytest.approx(scale, rel=1e-2)
    np.testing.assert_allclose(fit.rotation, rotation, atol=1e-2)
    np.testing.assert_allclose(fit.translation, translation, atol=1e-2)
    # least squares: no worse than the generating transform on the data it was fitted to
    truth = Similarity(scale, rotation, translation)
    assert ((fit.apply(source) - target) ** 2).sum() <= ((truth.apply(source) - target) ** 2).sum()


@pytest.mark.parametrize("seed", range(5))
def test_similarity_never_returns_a_reflection(seed):
    """A mirror image is best matched by a reflection; the fit must give a rotation."""
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(30, 3))
    mirrored = source * np.array([-1.0, 1.0, 1.0]) @ _random_rotation(rng).T
    fit = fit_similarity(source, mirrored)
    assert np.linalg.det(fit.rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(fit.rotation @ fit.rotation.T, np.eye(3), atol=1e-12)
    assert fit.scale > 0
    # and the best proper one: no nearby rotation (with its own best scale and shift) fits
    # the mirror image better
    best = _residual(source, mirrored, fit.rotation)
    assert best == pytest.approx(np.linalg.norm(fit.apply(source) - mirrored) ** 2)
    for _ in range(100):
        axis = rng.normal(size=3) * 0.05
        nudge = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]],
                          [-axis[1], axis[0], 0]])
        q, _ = np.linalg.qr(np.eye(3) + nudge)
        q = q * np.sign(np.diag(np.linalg.qr(np.eye(3) + nudge)[1]))
        assert _residual(source, mirrored, q @ fit.rotation) >= best - 1e-9


def _residual(source: np.ndarray, target: np.ndarray, rotation: np.ndarray) -> float:
    """Squared error of the best similarity with this rotation (scale, shift solved)."""
    a, b = source - source.mean(0), target - target.mean(0)
    turned = a @ rotation.T
    scale = (turned * b).sum() / (a**2).sum()
    return float(((scale * turned - b) ** 2).sum())


def test_similarity_of_planar_points_is_a_rotation():
    """Coplanar points leave the normal direction free; the fit still returns det +1."""
    rng = np.random.default_rng(3)
    source = np.c_[rng.normal(size=(20, 2)), np.zeros(20)]
    rotation = _random_rotation(rng)
    fit = fit_similarity(source, 2.0 * source @ rotation.T)
    assert np.linalg.det(fit.rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(fit.apply(source), 2.0 * source @ rotation.T, atol=1e-9)


def _random_triangles(rng: np.random.Generator, count: int) -> np.ndarray:
    corners = rng.normal(size=(count, 3, 3))
    corners[: count // 10, 2] = corners[: count // 10, 1]  # some degenerate (a segment)
    corners[count // 10: count // 5, 2] = (corners[count // 10: count // 5, 0] * 0.3
                                           + corners[count // 10: count // 5, 1] * 0.7)
    return corners


def test_closest_point_satisfies_the_projection_condition():
    """q is the closest point of a convex set to p exactly when q is in the set and
    (p - q) . (x - q) <= 0 for every x in it, i.e. for the three corners."""
    rng = np.random.default_rng(0)
    corners = _random_triangles(rng, 5000)
    points = rng.normal(scale=2.0, size=(5000, 3))
    weights = closest_point_barycentrics(points, corners)
    assert (weights >= -1e-12).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-12)
    closest = np.einsum("nk,nkd->nd", weights, corners)
    slack = np.einsum("nd,nkd->nk", points - closest, corners - closest[:, None])
    scale = np.linalg.norm(points - closest, axis=1)[:, None] * np.linalg.norm(
        corners - closest[:, None], axis=-1)
    assert (slack <= 1e-9 * np.maximum(scale, 1.0)).all()


def test_closest_point_matches_a_dense_sampling_of_the_triangle():
    rng = np.random.default_rng(1)
    corners = _random_triangles(rng, 200)
    points = rng.normal(scale=2.0, size=(200, 3))
    steps = 60
    i, j = np.meshgrid(np.arange(steps + 1), np.arange(steps + 1), indexing="ij")
    keep = i + j <= steps
    grid = np.stack([steps - i[keep] - j[keep], i[keep], j[keep]], -1) / steps  # (G, 3)
    samples = np.einsum("gk,nkd->ngd", grid, corners)  # (N, G, 3)
    brute = np.linalg.norm(samples - points[:, None], axis=-1).min(1)
    weights = closest_point_barycentrics(points, corners)
    found = np.linalg.norm(np.einsum("nk,nkd->nd", weights, corners) - points, axis=1)
    assert (found <= brute + 1e-12).all()  # never worse than any sample
    # and no better than the sampling's resolution allows
    spacing = np.linalg.norm(corners - corners[:, [1, 2, 0]], axis=-1).max(1) / steps
    assert (brute - found <= spacing).all()


def test_closest_on_triangles_agrees_with_brute_force_over_all_triangles():
    rng = np.random.default_rng(2)
    # a bumpy height-field mesh, as the registrations search, plus scattered points
    n = 12
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    vertices = np.c_[x.ravel(), y.ravel(), 0.1 * rng.normal(size=n * n)]
    quads = (np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None]).ravel()
    triangles = np.concatenate([np.c_[quads, quads + n, quads + 1],
                                np.c_[quads + 1, quads + n, quads + n + 1]])
    corners = vertices[triangles]
    points = np.c_[rng.uniform(-0.2, 1.2, size=(300, 2)), rng.normal(scale=0.3, size=300)]
    every = np.broadcast_to(corners, (len(points), *corners.shape))
    _, _, brute = closest_among(points, every)
    for candidates in (len(corners), 64):
        triangle, weights, distance = closest_on_triangles(points, corners, candidates,
                                                           chunk=50)
        np.testing.assert_allclose(distance, brute, atol=1e-12)
        reached = np.einsum("nk,nkd->nd", weights, corners[triangle])
        np.testing.assert_allclose(np.linalg.norm(reached - points, axis=1), distance,
                                   atol=1e-12)


def test_closest_among_skips_invalid_candidates():
    corners = np.array([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]],
                        [[0.0, 0, 5], [1, 0, 5], [0, 1, 5]]])[None]  # (1, 2, 3, 3)
    point = np.array([[0.2, 0.2, 0.1]])
    assert closest_among(point, corners)[0][0] == 0
    best, weights, distance = closest_among(point, corners, np.array([[False, True]]))
    assert best[0] == 1
    np.testing.assert_allclose(weights[0], [0.6, 0.2, 0.2])
    assert distance[0] == pytest.approx(4.9)
