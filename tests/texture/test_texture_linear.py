"""The linear texture model on data with a known answer: EM-PCA recovers what the masks
hide, the robust fit ignores an occluder that a plain least-squares fit paints in, the asset
round-trips and is hash checked, and Laplacian blending keeps each side where it is sure."""

import json

import numpy as np
import pytest
import torch

from engine.errors import MissingAssetError
from engine.texture import asset
from engine.texture.blend import laplacian_blend
from engine.texture.dataset import Sample, save_sample
from engine.texture.linear import LinearTextureModel, build_linear_model

SIZE = (16, 32)


def low_rank_atlases(count: int, rank: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(count, 3, 16, 32) smooth random atlases of a known rank, and the truth's basis."""
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, SIZE[0]), torch.linspace(0, 1, SIZE[1]),
                            indexing="ij")
    basis = torch.stack([torch.stack([torch.sin((k + 1) * 3 * xs + c) * torch.cos(
        (k + 2) * 2 * ys - c) for c in range(3)]) for k in range(rank)]) * 0.1
    codes = torch.randn(count, rank, generator=generator)
    mean = torch.tensor([0.7, 0.5, 0.4]).view(3, 1, 1)
    return mean + torch.einsum("nk,kchw->nchw", codes, basis), basis


def random_masks(count: int, keep: float, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = (torch.rand(count, 1, 4, 8, generator=generator) < keep).float()
    return torch.nn.functional.interpolate(coarse, size=SIZE, mode="nearest")[:, 0]


def test_em_pca_recovers_hidden_texels_better_than_the_weighted_mean():
    data, _ = low_rank_atlases(60, 3)
    masks = random_masks(60, 0.6)
    covered = torch.ones(SIZE, dtype=torch.bool)
    model = build_linear_model(data, masks, covered, components=3, info={})
    hidden = (masks == 0)[:, None].expand_as(data)
    latents = torch.stack([model.fit(d, m)[0] for d, m in zip(data, masks, strict=True)])
    completed = model.decode(latents)
    error = (completed - data).abs()[hidden].mean()
    mean_error = (model.mean - data).abs()[hidden].mean()
    assert error < 0.01 < mean_error
    assert sum(model.info["explained_variance"]) > 0.98


def test_robust_fit_ignores_an_occluder_that_least_squares_paints_in():
    data, _ = low_rank_atlases(40, 4)
    model = build_linear_model(data[1:], torch.ones(39, *SIZE), torch.ones(SIZE, dtype=bool),
                               components=4, info={})
    truth = data[0]
    occluded = truth.clone()
    occluded[:, 2:9, 3:12] = 0.05  # a dark patch the colour tests did not catch
    patch = torch.zeros(SIZE, dtype=torch.bool)
    patch[2:9, 3:12] = True
    confidence = torch.ones(SIZE)

    def patch_error(iterations: int) -> float:
        latent, _ = model.fit(occluded, confidence, iterations=iterations)
        return float((model.decode(latent) - truth).abs()[:, patch].mean())

    assert patch_error(iterations=6) < 0.02
    assert patch_error(iterations=1) > 2 * patch_error(iterations=6)


def test_model_file_round_trip(tmp_path):
    data, _ = low_rank_atlases(10, 2)
    model = build_linear_model(data, torch.ones(10, *SIZE), torch.ones(SIZE, dtype=bool),
                               components=2, info={"licence": "test"})
    model.save(tmp_path / "m.npz")
    loaded = LinearTextureModel.load(tmp_path / "m.npz")
    latent = torch.tensor([0.5, -1.0])
    assert torch.allclose(loaded.decode(latent), model.decode(latent), atol=2e-3)
    assert loaded.info["licence"] == "test" and loaded.size == 2


def test_laplacian_blend_keeps_each_side_and_joins_smoothly():
    first = torch.rand(3, 64, 64)
    second = torch.rand(3, 64, 64) * 0.2 + 0.7
    assert torch.allclose(laplacian_blend(first, second, torch.ones(64, 64)), first, atol=1e-5)
    assert torch.allclose(laplacian_blend(first, second, torch.zeros(64, 64)), second,
                          atol=1e-5)
    mask = torch.zeros(64, 64)
    mask[:, :32] = 1
    out = laplacian_blend(first, second, mask)
    # high frequencies switch at the seam; far from it each side is itself
    assert torch.allclose(out[:, :, :8], first[:, :, :8], atol=0.1)
    assert torch.allclose(out[:, :, -8:], second[:, :, -8:], atol=0.1)


def test_asset_installs_from_data_is_listed_and_refuses_a_tampered_file(tmp_path, face_model):
    data = tmp_path / "data"
    data.mkdir()
    generator = np.random.default_rng(0)
    for i in range(4):
        save_sample(data / f"p{i}.npz", Sample(
            generator.uniform(0.3, 0.8, (3, 16, 32)).astype(np.float32),
            np.ones((16, 32), np.float32), np.zeros(57, np.float32)))
    home = tmp_path / "home"
    assert asset.status(home)["state"] == "missing"
    assert asset.load_installed(home) is None
    folder = asset.install_from_data(data, home, {"source": "test data"}, components=2)
    info = asset.status(home)
    assert info["installed"] and "licence" in info["detail"] and "4 portraits" in info["detail"]
    model = asset.load_installed(home)
    assert model.atlas_size == (16, 32) and model.size == 2
    assert model.info["samples"] == ["p0", "p1", "p2", "p3"]
    manifest = json.loads((folder / "manifest.json").read_text())
    with open(folder / manifest["file"], "ab") as handle:
        handle.write(b"tampered")
    assert asset.status(home)["state"] == "damaged"
    with pytest.raises(MissingAssetError, match="damaged"):
        asset.load_installed(home)
