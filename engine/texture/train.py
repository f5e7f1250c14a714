"""Training the GAN texture model: `texture-model train DATA --out RUN_DIR`.

StyleGAN2-ADA's recipe at a small scale: the non-saturating logistic loss, a lazy R1
penalty on D's gradient at (augmented) reals, an exponential moving average of the
generator (what the model ships), adaptive augmentation of everything D sees, and the trust
masks of `texture-data build` so that only trusted texels are judged (`gan.py`). Texels
that fewer than MIN_SUPPORT of the photos trust (scalp, back of the head, under the collar)
are never judged, so the generator is pulled there towards the data's trusted mean atlas,
filled by push-pull as the linear model is: it completes a whole head. On CUDA the
forward passes run under bfloat16 autocast (no loss scaling needed); the CPU runs float32.

The run folder holds checkpoint.pt (networks, optimiser states, step, augmentation p,
random-number state: a resumed run continues exactly where it stopped), stats.jsonl (a
line per log interval), reals.png (training atlases, untrusted texels grey) and
samples/step-NNNNNNN.png (the moving-average generator on fixed z). All randomness of a
step comes from one CPU generator, so a run is reproducible from its seed.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from engine.device import resolve_device
from engine.errors import BadInputError
from engine.texture.dataset import load_sample, sample_paths
from engine.texture.gan import (
    CHECKPOINT_FORMAT,
    Discriminator,
    GanConfig,
    Generator,
    augment,
    load_checkpoint,
    mirror_tiles,
)
from engine.texture.linear import MIN_SUPPORT, resample_observation
from engine.texture.unwrap import push_pull_fill

CHECKPOINT = "checkpoint.pt"
TRUSTED = 0.5  # a texel whose confidence reaches this is judged by D
_GRID = 16  # sample grid: 4 x 4 atlases
_EMA_RAMPUP = 0.05  # early on, the average spans at most this share of the images seen


@dataclass(frozen=True)
class RunSettings:
    """How long and how a run goes (not part of the model). steps: the run's total step
    count, so re-running the same command with --resume finishes an interrupted run."""

    steps: int
    seed: int = 0
    device: str = "cpu"
    sample_every: int = 500
    checkpoint_every: int = 1000
    log_every: int = 50


def load_training_data(folder: Path, resolution: int) -> tuple[Tensor, Tensor, list[str]]:
    """A data folder's samples at the model's atlas size: images (N, 3, T, 2T) in [-1, 1],
    trust masks (N, 1, T, 2T) in {0, 1}, and the sample names. Shrinking averages by
    confidence (`resample_observation`); growing is bilinear."""
    paths = sample_paths(folder)
    if len(paths) < 2:
        raise BadInputError(f"{folder} holds {len(paths)} texture samples; at least 2 needed")
    images, masks = [], []
    size = (resolution, 2 * resolution)
    for path in paths:
        sample = load_sample(path)
        albedo = torch.from_numpy(sample.albedo)
        confidence = torch.from_numpy(sample.confidence)
        if albedo.shape[-2] >= resolution:
            albedo, confidence = resample_observation(albedo, confidence, size)
        else:
            albedo = F.interpolate(albedo[None], size, mode="bilinear", align_corners=False)[0]
            confidence = F.interpolate(confidence[None, None], size, mode="bilinear",
                                       align_corners=False)[0, 0]
        images.append(albedo * 2 - 1)
        masks.append((confidence >= TRUSTED).float()[None])
    return torch.stack(images), torch.stack(masks), [p.stem for p in paths]


def completion_target(images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """What the generator paints where the data cannot judge it. images (N, 3, T, 2T),
    masks (N, 1, T, 2T) -> the trusted mean atlas (3, T, 2T) of the data and its mirror,
    push-pull filled (the average trusted colour where nothing is near); and (1, T, 2T)
    1 where fewer than MIN_SUPPORT of them are trusted."""
    masks = torch.cat([masks, mirror_tiles(masks)])
    images = torch.cat([images, mirror_tiles(images)])
    known = masks.mean(dim=0)[0] >= MIN_SUPPORT  # (T, 2T)
    mean = (images * masks).sum(dim=0) / masks.sum(dim=0).clamp(min=1.0)
    # far from every trusted texel push-pull fades to 0: make that the average colour
    colour = (images * masks).sum(dim=(0, 2, 3)) / masks.sum().clamp(min=1.0)  # (3,)
    filled = push_pull_fill(mean - colour[:, None, None], known) + colour[:, None, None]
    return filled, (~known).float()[None]


class GanTrainer:
    """The training state and one step of it.

    images, masks: (N, 3, T, 2T), (N, 1, T, 2T) as `load_training_data` gives them (moved to
    the device here). The networks are initialised from `seed`; after that every random
    number comes from `self.rng`, which the checkpoint keeps.
    """

    def __init__(self, config: GanConfig, images: Tensor, masks: Tensor,
                 device: torch.device, seed: int = 0, info: dict | None = None):
        self.config, self.device, self.info = config, device, info or {}
        self.images, self.masks = images.to(device), masks.to(device)
        self.fill, self.unsupported = (t.to(device) for t in completion_target(images, masks))
        with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left alone
            torch.manual_seed(seed)
            self.generator = Generator(config).to(device)
            self.discriminator = Discriminator(config).to(device)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.g_optimiser = torch.optim.Adam(self.generator.parameters(), lr=config.g_lr,
                                            betas=(0.0, 0.99), eps=1e-8)
        # lazy R1: its step is `interval` times as big, so D's Adam is slowed to match
        ratio = config.r1_interval / (config.r1_interval + 1)
        self.d_optimiser = torch.optim.Adam(self.discriminator.parameters(),
                                            lr=config.d_lr * ratio,
                                            betas=(0.0, 0.99**ratio), eps=1e-8)
        self.rng = torch.Generator().manual_seed(seed)
        self.grid_z = torch.randn(_GRID, config.z_dim,
                                  generator=torch.Generator().manual_seed(seed + 1))
        self.step = 0
        self.augment_p = 0.0
        # the sum of sign(D(real)) since the last p update, kept on the device (no sync)
        self.ada_sum, self.ada_count = torch.zeros((), device=device), 0
        use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.autocast_dtype = torch.bfloat16 if use_bf16 else None

    @property
    def images_seen(self) -> int:
        return self.step * self.config.batch

    def _autocast(self, enabled: bool = True) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None or not enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _z(self) -> Tensor:
        return torch.randn(self.config.batch, self.config.z_dim, generator=self.rng).to(
            self.device)

    def _reals(self) -> tuple[Tensor, Tensor]:
        """A batch of training atlases (B, 3, T, 2T) and their masks (B, 1, T, 2T), each
        mirrored with probability 1/2."""
        index = torch.randint(len(self.images), (self.config.batch,), generator=self.rng)
        flip = (torch.rand(self.config.batch, generator=self.rng) < 0.5).to(self.device)
        both = torch.cat([self.images[index.to(self.device)],
                          self.masks[index.to(self.device)]], dim=1)
        both = torch.where(flip[:, None, None, None], mirror_tiles(both), both)
        return both[:, :3], both[:, 3:]

    def _judge(self, image: Tensor, mask: Tensor) -> Tensor:
        """D's logits (B,) in float32 for the augmented image."""
        return self.discriminator(*augment(image, mask, self.augment_p, self.rng)).float()

    def train_step(self) -> dict[str, Tensor]:
        """One generator and one discriminator update; returns their losses and mean logits
        as scalar tensors on the device (reading them would wait for the GPU)."""
        config = self.config
        # generator: fakes are shown in the trust masks of real samples
        self.discriminator.requires_grad_(False)
        _, fake_mask = self._reals()
        with self._autocast():
            fake = self.generator(self._z())
            g_loss = F.softplus(-self._judge(fake, fake_mask)).mean()
            fill_loss = ((fake.float() - self.fill).square() * self.unsupported).mean()
        self.g_optimiser.zero_grad(set_to_none=True)
        (g_loss + config.fill_weight * fill_loss).backward()
        self.g_optimiser.step()
        self.discriminator.requires_grad_(True)
        self._update_ema()

        # discriminator, with R1 every r1_interval steps (in float32: it is a gradient norm)
        real, real_mask = self._reals()
        _, fake_mask = self._reals()
        with torch.no_grad(), self._autocast():
            fake = self.generator(self._z())
        regularise = self.step % config.r1_interval == 0
        with self._autocast():
            d_fake = self._judge(fake, fake_mask)
        real, real_mask = augment(real, real_mask, self.augment_p, self.rng)
        real = real.detach().requires_grad_(regularise)
        with self._autocast(enabled=not regularise):
            d_real = self.discriminator(real, real_mask).float()
        d_loss = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
        r1 = torch.zeros((), device=self.device)
        if regularise:
            (gradient,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            r1 = gradient.square().sum(dim=(1, 2, 3)).mean()
            d_loss = d_loss + r1 * (config.r1_gamma / 2 * config.r1_interval)
        self.d_optimiser.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimiser.step()

        self.ada_sum += d_real.detach().sign().sum()
        self.ada_count += config.batch
        self.step += 1
        if self.step % config.ada_interval == 0:
            self._update_augment_p()
        return {"g_loss": g_loss.detach(), "fill": fill_loss.detach(), "d_loss": d_loss.detach(),
                "r1": r1.detach(),
                "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}

    def _update_ema(self) -> None:
        half_life = min(self.config.ema_kimg * 1000, (self.images_seen + self.config.batch)
                        * _EMA_RAMPUP)
        beta = 0.5 ** (self.config.batch / max(half_life, 1e-8))
        with torch.no_grad():
            for average, current in zip(self.generator_ema.parameters(),
                                        self.generator.parameters(), strict=True):
                average.lerp_(current, 1.0 - beta)

    def _update_augment_p(self) -> None:
        """ADA: r_t = E[sign(D(real))] above the target means D is overfitting the reals:
        more augmentation; below it, less. p moves by at most batch/ada_kimg per image."""
        r_t = float(self.ada_sum) / max(self.ada_count, 1)
        adjust = np.sign(r_t - self.config.ada_target) * self.ada_count / (
            self.config.ada_kimg * 1000)
        self.augment_p = float(min(max(self.augment_p + adjust, 0.0), 1.0))
        self.ada_sum.zero_()
        self.ada_count = 0

    def sample_grid(self) -> np.ndarray:
        """The moving-average generator on the fixed grid z: (4T, 4 * 2T, 3) uint8."""
        with torch.no_grad():
            atlases = self.generator_ema(self.grid_z.to(self.device)).float()
        return _tile(((atlases + 1) / 2).clamp(0, 1).cpu())

    def state_dict(self) -> dict:
        return {"format": CHECKPOINT_FORMAT, "config": asdict(self.config),
                "generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict(),
                "generator_ema": self.generator_ema.state_dict(),
                "g_optimiser": self.g_optimiser.state_dict(),
                "d_optimiser": self.d_optimiser.state_dict(),
                "step": self.step, "augment_p": self.augment_p,
                "ada_sum": float(self.ada_sum), "ada_count": self.ada_count,
                "rng": self.rng.get_state(), "grid_z": self.grid_z, "info": self.info}

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.generator_ema.load_state_dict(state["generator_ema"])
        self.g_optimiser.load_state_dict(state["g_optimiser"])
        self.d_optimiser.load_state_dict(state["d_optimiser"])
        self.step, self.augment_p = int(state["step"]), float(state["augment_p"])
        self.ada_sum.fill_(float(state["ada_sum"]))
        self.ada_count = int(state["ada_count"])
        self.rng.set_state(state["rng"].cpu())
        self.grid_z = state["grid_z"].cpu()
        self.info = state["info"]

    def save(self, path: Path) -> None:
        """Atomically: an interrupted save never leaves a checkpoint that looks whole."""
        partial = path.with_suffix(".partial")
        torch.save(self.state_dict(), partial)
        partial.replace(path)


def _tile(atlases: Tensor, columns: int = 4) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> a grid image (rows * H', columns * W', 3) uint8, each atlas
    enlarged (nearest) to at least 64 texels high so small ones stay visible."""
    scale = max(1, 64 // atlases.shape[-2])
    atlases = F.interpolate(atlases, scale_factor=scale, mode="nearest")
    count, channels, height, width = atlases.shape
    rows = -(-count // columns)
    padded = torch.ones(rows * columns, channels, height, width)
    padded[:count] = atlases
    grid = padded.view(rows, columns, channels, height, width).permute(0, 3, 1, 4, 2)
    return (grid.reshape(rows * height, columns * width, channels).numpy() * 255).round().astype(
        np.uint8)


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def train(data: Path, out: Path, config: GanConfig, settings: RunSettings,
          resume: bool = False, log: Callable[[str], None] = print) -> Path:
    """Train (or with `resume`, continue) a run in `out` up to settings.steps; returns the
    checkpoint. With resume, the checkpoint's config replaces `config`."""
    checkpoint = out / CHECKPOINT
    try:
        state = load_checkpoint(checkpoint) if resume else None
    except ValueError as error:
        raise BadInputError(str(error)) from error
    if state is not None:
        config = GanConfig(**state["config"])
    device = resolve_device(settings.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    images, masks, names = load_training_data(data, config.resolution)
    info = {"data": str(data), "samples": names, "seed": settings.seed,
            "torch": str(torch.__version__), "trainer": "engine.texture.train"}
    trainer = GanTrainer(config, images, masks, device, settings.seed, info)
    if state is not None:
        trainer.load_state_dict(state)
        trainer.info = {**trainer.info, "resumed_with_data": str(data)}
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "reals.png").exists():
        shown = torch.where(masks[:_GRID] > 0, (images[:_GRID] + 1) / 2, torch.tensor(0.5))
        _write_png(out / "reals.png", _tile(shown))
    log(f"texture-gan: {len(names)} samples at {config.resolution}x{2 * config.resolution} on "
        f"{device} ({'bfloat16' if trainer.autocast_dtype else 'float32'}), batch "
        f"{config.batch}, from step {trainer.step} to {settings.steps}")
    start, images_at_start = time.perf_counter(), trainer.images_seen
    totals: dict[str, Tensor] = {}
    while trainer.step < settings.steps:
        for key, value in trainer.train_step().items():
            totals[key] = totals[key] + value if key in totals else value
        step, last = trainer.step, trainer.step == settings.steps
        if step % settings.log_every == 0 or last:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            rate = (trainer.images_seen - images_at_start) / (time.perf_counter() - start)
            count = (trainer.images_seen - images_at_start) / config.batch
            stats = {"step": step, "kimg": round(trainer.images_seen / 1000, 3),
                     **{k: round(float(v) / count, 4) for k, v in totals.items()},
                     "augment_p": round(trainer.augment_p, 4), "images_per_s": round(rate, 2)}
            with (out / "stats.jsonl").open("a") as handle:
                handle.write(json.dumps(stats) + "\n")
            log(f"texture-gan: step {step} kimg {stats['kimg']} G {stats['g_loss']:.3f} "
                f"fill {stats['fill']:.4f} D {stats['d_loss']:.3f} R1 {stats['r1']:.3f} "
                f"p {trainer.augment_p:.3f} "
                f"{rate:.1f} images/s")
        if step % settings.sample_every == 0 or last:
            _write_png(out / "samples" / f"step-{step:07d}.png", trainer.sample_grid())
        if step % settings.checkpoint_every == 0 or last:
            trainer.save(checkpoint)
        if step % settings.log_every == 0 or last:  # the rate leaves out pictures and saving
            start, images_at_start = time.perf_counter(), trainer.images_seen
            totals = {}
    return checkpoint
