"""The GAN texture model at a tiny size on CPU: the atlas layout, a discriminator blind to
untrusted texels, training that writes its checkpoint and pictures, a resumed run identical
to a straight one, the checkpoint as a texture model whose latent the fitter can fit, and
the `texture-model train` command."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.texture.gan import (
    Discriminator,
    GanTextureModel,
    Generator,
    augment,
    load_checkpoint,
    mirror_tiles,
    preset,
)
from engine.texture.train import (
    GanTrainer,
    RunSettings,
    completion_target,
    load_training_data,
    train,
)

REPO = Path(__file__).resolve().parents[2]
TINY = preset("tiny")  # atlases (3, 16, 32)


def engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_generator_makes_atlases_in_the_uv_layout():
    torch.manual_seed(0)
    for resolution in (16, 32):
        generator = Generator(preset("tiny", resolution))
        atlas = generator(torch.randn(2, TINY.z_dim))
        assert atlas.shape == (2, 3, resolution, 2 * resolution)
    model = GanTextureModel(Generator(TINY))
    albedo = model.decode(model.initial_latent())
    assert albedo.shape == (1, 3, 16, 32)
    assert 0.0 <= float(albedo.min()) and float(albedo.max()) <= 1.0
    assert model.initial_latent().shape == (1, TINY.w_dim)


def test_mirroring_flips_each_tile_in_place():
    x = torch.arange(2 * 3 * 4 * 8, dtype=torch.float32).view(2, 3, 4, 8)
    mirrored = mirror_tiles(x)
    assert torch.equal(mirrored[..., :4], x[..., :4].flip(-1))
    assert torch.equal(mirrored[..., 4:], x[..., 4:].flip(-1))
    assert torch.equal(mirror_tiles(mirrored), x)


def test_what_no_photo_trusts_is_completed_from_the_trusted_mean():
    images = torch.zeros(4, 3, 8, 16)
    images[:, 0] = torch.tensor([0.2, 0.4, 0.6, 0.8])[:, None, None]  # red differs per sample
    masks = torch.zeros(4, 1, 8, 16)
    masks[:, :, 2:6, 1:3] = 1  # the left of the face tile only
    fill, unsupported = completion_target(images, masks)
    assert unsupported.shape == (1, 8, 16)
    # mirrored, the right of the face tile is supported too; the head tile is not
    assert unsupported[0, 2:6, 1:3].sum() == unsupported[0, 2:6, 5:7].sum() == 0
    assert bool((unsupported[0, :, 8:] == 1).all())
    assert torch.allclose(fill[0], torch.full((8, 16), 0.5))  # the mean everywhere
    assert torch.allclose(fill[1:], torch.zeros(2, 8, 16))


def test_discriminator_does_not_see_untrusted_texels():
    torch.manual_seed(0)
    discriminator = Discriminator(TINY)
    image = torch.rand(4, 3, 16, 32) * 2 - 1
    mask = (torch.rand(4, 1, 16, 32) < 0.4).float()
    changed = torch.where(mask > 0, image, torch.rand_like(image) * 10 - 5)

    def verdict(x: torch.Tensor, p: float) -> torch.Tensor:
        return discriminator(*augment(x, mask, p, torch.Generator().manual_seed(1)))

    for p in (0.0, 1.0):  # augmented too: its colour statistics use trusted texels only
        assert torch.equal(verdict(image, p), verdict(changed, p))
    trusted_change = torch.where(mask > 0, -image, image)
    assert not torch.equal(verdict(image, 0.0), verdict(trusted_change, 0.0))


def test_training_writes_checkpoint_samples_and_speed(data, tmp_path):
    out = tmp_path / "run"
    settings = RunSettings(steps=6, sample_every=3, checkpoint_every=3, log_every=3)
    lines: list[str] = []
    checkpoint = train(data, out, TINY, settings, log=lines.append)
    state = load_checkpoint(checkpoint)
    assert state["step"] == 6 and state["info"]["samples"] == [f"P{i:03d}" for i in range(6)]
    assert (out / "reals.png").is_file()
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "step-0000003.png", "step-0000006.png"]
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [3, 6]
    assert all(np.isfinite(s["g_loss"]) and np.isfinite(s["d_loss"]) and s["images_per_s"] > 0
               for s in stats)
    assert "images/s" in lines[-1]


def _parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_resumed_training_is_identical_to_a_straight_run(data, tmp_path):
    images, masks, _ = load_training_data(data, TINY.resolution)
    cpu = torch.device("cpu")
    straight = GanTrainer(TINY, images, masks, cpu, seed=3)
    first = GanTrainer(TINY, images, masks, cpu, seed=3)
    # augmentation on from the start, so its random numbers are part of what must resume
    straight.augment_p = first.augment_p = 0.5
    for _ in range(8):  # covers lazy R1 (every 4) and augmentation updates (every 2)
        straight.train_step()
    for _ in range(4):
        first.train_step()
    first.save(tmp_path / "checkpoint.pt")
    resumed = GanTrainer(TINY, images, masks, cpu, seed=99)  # the checkpoint replaces it all
    resumed.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt"))
    for _ in range(4):
        resumed.train_step()
    assert resumed.step == straight.step == 8
    assert resumed.augment_p == straight.augment_p != 0.5
    for name in ("generator", "discriminator", "generator_ema"):
        for a, b in zip(_parameters(getattr(straight, name)), _parameters(getattr(resumed, name)),
                        strict=True):
            assert torch.equal(a, b), name

    straight.save(tmp_path / "straight.pt")
    model = GanTextureModel.load(tmp_path / "straight.pt")
    w = model.initial_latent() + 0.5 * model.w_std
    expected = ((straight.generator_ema.synthesis(w) + 1) / 2).clamp(0, 1)
    assert torch.equal(model.decode(w), expected)


def test_fitting_the_latent_reproduces_a_decoded_atlas():
    """What the fitter does with a texture model: Adam on the latent against a target."""
    torch.manual_seed(0)
    model = GanTextureModel(Generator(TINY))
    target = model.decode(model.initial_latent()
                          + 1.5 * model.w_std * torch.randn(1, TINY.w_dim))
    latent = model.initial_latent().requires_grad_(True)
    optimiser = torch.optim.Adam([latent], lr=0.05)

    def l1() -> float:
        with torch.no_grad():
            return float((model.decode(latent) - target).abs().mean())

    start = l1()
    for _ in range(60):
        loss = (model.decode(latent) - target).abs().mean() + 1e-3 * model.prior(latent)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert l1() < 0.5 * start
    assert float(model.prior(model.initial_latent())) == 0.0


@pytest.mark.slow  # a fresh Python loading torch and its optimisers: ~15 s on a busy CPU
def test_train_command_runs_and_resumes(data, tmp_path):
    out = tmp_path / "run"
    run = engine("texture-model", "train", str(data), "--out", str(out), "--config", "tiny",
                 "--steps", "2", "--device", "cpu", "--sample-every", "1")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "images/s" in run.stderr and (out / "samples" / "step-0000002.png").is_file()
    again = main(["texture-model", "train", str(data), "--out", str(out), "--steps", "3",
                  "--resume", "--device", "cpu"])
    assert again == 0 and load_checkpoint(out / "checkpoint.pt")["step"] == 3


def test_train_command_rejects_bad_input(data, tmp_path):
    missing = engine("texture-model", "train", str(tmp_path / "nowhere"), "--out",
                     str(tmp_path / "run"))
    assert missing.returncode == 2 and "data folder" in missing.stderr
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["texture-model", "train", str(data), "--out", str(run)]) == 2  # no --resume
    assert main(["texture-model", "train", str(data), "--out", str(run), "--resume"]) == 2
    assert main(["texture-model", "train", str(data), "--out", str(tmp_path / "new"),
                 "--resolution", "24"]) == 2
