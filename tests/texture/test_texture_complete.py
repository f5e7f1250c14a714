"""The final texture with any texture model: a tiny GAN trained here for a few steps and a
tiny linear model go through the same completion (robust latent fit, tone match, blend);
the GAN's latent fit lowers the robust objective; `--texture-model` picks and names the
model."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.errors import BadInputError, MissingAssetError
from engine.texture.complete import complete_from_observation, load_texture_model, match_tone
from engine.texture.gan import GanTextureModel, preset
from engine.texture.latent_fit import (
    decoded_atlas,
    fit_latent,
    fit_texture_model,
    robust_data_term,
)
from engine.texture.linear import build_linear_model, resample_observation
from engine.texture.observe import ObservedAlbedo
from engine.texture.train import RunSettings, train

SIZE = (32, 64)  # the observed atlas: twice the tiny models' (16, 32)


def plane(height: int) -> torch.Tensor:
    """(h, 2h, 3) surface points of a tone grid: a flat sheet, cells 1 cm apart."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(2 * height), indexing="ij")
    return torch.stack([xs + 1.0, ys + 1.0, torch.ones(height, 2 * height)], dim=-1)


@pytest.fixture(scope="module")
def checkpoint(module_data, tmp_path_factory) -> Path:
    """A tiny GAN trained for a few steps on the tiny data folder (about a second)."""
    settings = RunSettings(steps=4, sample_every=4, checkpoint_every=4, log_every=4)
    return train(module_data, tmp_path_factory.mktemp("gan") / "run", preset("tiny"),
                 settings, log=lambda _: None)


@pytest.fixture(scope="module")
def gan(checkpoint) -> GanTextureModel:
    return GanTextureModel.load(checkpoint)


def observation(gan: GanTextureModel) -> tuple[ObservedAlbedo, torch.Tensor]:
    """A photo's observed atlas at SIZE: an atlas the GAN can make (a latent away from its
    mean), plus fine detail of its own (a +-0.03 checker), trusted on the face tile's middle
    and unseen elsewhere. Also returns the atlas without the detail (the truth)."""
    generator = torch.Generator().manual_seed(0)
    latent = gan.initial_latent() + gan.w_std * torch.randn(gan.w_std.shape, generator=generator)
    truth = F.interpolate(gan.decode(latent), SIZE, mode="bilinear", align_corners=False)[0]
    ys, xs = torch.meshgrid(torch.arange(SIZE[0]), torch.arange(SIZE[1]), indexing="ij")
    checker = 0.03 * (((ys + xs) % 2) * 2 - 1)
    photo = (truth + checker).clamp(0, 1)
    confidence = torch.zeros(SIZE)
    confidence[6:26, 8:24] = 1.0
    covered = torch.ones(SIZE, dtype=torch.bool)
    features = torch.zeros(SIZE, dtype=torch.bool)
    return ObservedAlbedo(photo * (confidence > 0), confidence, covered, features), truth


def test_gan_latent_fit_lowers_the_robust_objective(gan):
    seen, _ = observation(gan)
    target, weight = resample_observation(seen.albedo, seen.confidence, (16, 32))

    def objective(latent: torch.Tensor) -> float:
        data = robust_data_term(gan.decode(latent)[0], target, weight)
        return float(data + latent.numel() * gan.prior(latent))

    latent, residual = fit_latent(gan, seen.albedo, seen.confidence, steps=60)
    start = gan.initial_latent()
    start_residual = (gan.decode(start)[0] - target).norm(dim=0)
    observed = weight > 0
    assert latent.shape == start.shape and residual.shape == (16, 32)
    assert objective(latent) < 0.8 * objective(start)
    assert float(residual[observed].mean()) < float(start_residual[observed].mean())
    assert bool((residual[~observed] == 0).all())  # unobserved texels have no residual


def test_gan_completion_keeps_trusted_texels_and_fills_the_rest(gan):
    seen, truth = observation(gan)
    done = complete_from_observation(gan, seen, plane(16))
    assert done.albedo.shape == (3, *SIZE) and done.trusted.shape == SIZE
    assert bool(torch.isfinite(done.albedo).all())
    assert 0 <= float(done.albedo.min()) and float(done.albedo.max()) <= 1
    inside = torch.zeros(SIZE, dtype=torch.bool)
    inside[9:23, 11:21] = True  # trusted, away from the blend's edge
    assert float(done.trusted[inside].min()) > 0.5  # the model explains the photo there
    # the photo's own detail (the checker) is kept where trusted, not the model's smooth atlas
    assert float((done.albedo - seen.albedo)[:, inside].abs().mean()) < 0.01
    detail = done.albedo - F.avg_pool2d(done.albedo[None], 3, 1, 1, count_include_pad=False)[0]
    checker = seen.albedo - F.avg_pool2d(seen.albedo[None], 3, 1, 1, count_include_pad=False)[0]
    assert float(torch.corrcoef(torch.stack([detail[:, inside].flatten(),
                                             checker[:, inside].flatten()]))[0, 1]) > 0.7
    # unseen texels come from the fitted model: much nearer the truth than its mean atlas
    unseen = seen.confidence == 0
    mean_atlas = F.interpolate(gan.decode(gan.initial_latent()), SIZE, mode="bilinear",
                               align_corners=False)[0]
    error = float((done.albedo - truth)[:, unseen].abs().mean())
    assert error < 0.6 * float((mean_atlas - truth)[:, unseen].abs().mean())


def test_linear_model_goes_through_the_same_path(gan):
    """The closed-form fit is dispatched to, and its completion is blended the same way."""
    atlases = torch.stack([gan.decode(gan.initial_latent() + s * gan.w_std)[0]
                           for s in (-1.0, -0.5, 0.5, 1.0)])
    linear = build_linear_model(atlases, torch.ones(4, 16, 32),
                                torch.ones(16, 32, dtype=torch.bool), 3, {})
    seen, _ = observation(gan)
    latent, residual = fit_texture_model(linear, seen.albedo, seen.confidence)
    expected = linear.fit(seen.albedo, seen.confidence)
    assert torch.equal(latent, expected[0]) and torch.equal(residual, expected[1])
    done = complete_from_observation(linear, seen, plane(16))
    assert done.latent.shape == (3,) and done.albedo.shape == (3, *SIZE)
    assert decoded_atlas(linear, latent).shape == (3, 16, 32)


def test_tone_match_brings_the_completion_to_the_skin_tone():
    """A completion darker and redder than the trusted skin gets the skin's coarse colour
    everywhere, far from the face too; its fine structure stays."""
    skin_colour = torch.tensor([0.8, 0.62, 0.52])[:, None, None]
    albedo = skin_colour.expand(3, 64, 128).clone()
    skin = torch.zeros(64, 128, dtype=torch.bool)
    skin[16:48, 16:48] = True  # the face, on the left tile
    seen = ObservedAlbedo(albedo * skin, skin.float(), torch.ones(64, 128, dtype=torch.bool),
                          torch.zeros(64, 128, dtype=torch.bool))
    ys, xs = torch.meshgrid(torch.arange(64), torch.arange(128), indexing="ij")
    detail = 0.02 * (((ys // 2 + xs // 2) % 2) * 2 - 1)  # 2-texel squares
    completion = torch.tensor([0.6, 0.4, 0.3])[:, None, None] + detail
    matched = match_tone(completion, seen, skin, plane(32))
    head = matched[:, :, 64:]  # the head tile: nothing trusted there
    assert torch.allclose(head.mean(dim=(1, 2)), skin_colour.flatten(), atol=0.02)
    ratio = matched / completion  # a smooth gain: the 2-texel squares keep their contrast
    assert float((ratio[:, :, 1:] - ratio[:, :, :-1]).abs().max()) < 0.1
    assert float((matched[0] - F.avg_pool2d(matched[:1][None], 3, 1, 1)[0, 0]).abs()
                 [4:-4, 4:-4].mean()) > 0.01
    unchanged = match_tone(completion, seen, torch.zeros_like(skin), plane(32))  # no skin: no tone
    assert torch.equal(unchanged, completion)


def test_texture_model_choice_loads_and_names_the_model(checkpoint, tmp_path, monkeypatch):
    model, name = load_texture_model(str(checkpoint), "cpu")
    assert isinstance(model, GanTextureModel) and name == "gan-uv:run/checkpoint.pt"
    assert load_texture_model("none", "cpu") == (None, None)
    monkeypatch.setenv("GANFIT_HOME", str(tmp_path / "empty-home"))
    assert load_texture_model("auto", "cpu") == (None, None)
    with pytest.raises(MissingAssetError, match="texture-pca"):
        load_texture_model("pca", "cpu")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)  # a torch file, not a GAN checkpoint
    for path in (other, tmp_path / "missing.pt"):
        with pytest.raises(BadInputError, match="--texture-model"):
            load_texture_model(str(path), "cpu")
