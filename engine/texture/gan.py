"""The GAN texture model: a StyleGAN2-style generator of the skin's UV albedo atlas.

GANFit decodes the texture from a GAN's latent code, fitted with the shape and light. Here a
mapping network turns z into a style code w; a synthesis network starts from a learned
(4, 8) constant and doubles the resolution to the atlas (3, T, 2T), every 3x3 convolution
modulated by w and demodulated (its output renormalised, so the style sets relative channel
weights without blowing up activations), with an RGB output at each resolution summed
upwards (skip architecture). It has no noise inputs: the fitter needs decode(w) to be a
function of w alone.

The discriminator only judges trusted texels: the training atlases are unwrapped from
single photos, so most texels are unseen or doubtful (the confidence mask). It sees the
atlas multiplied by the trust mask plus the mask itself, and fakes are shown in the masks
of real samples, so the mask tells real from fake nothing and an untrusted texel's value
cannot change the verdict.

The data set is small (hundreds of photos), so the discriminator's input is augmented
(ADA): colour, integer translation and cutout, each applied with probability p that the
trainer tunes from the sign of D's outputs on reals. Mirroring is done on the data instead
(`mirror_tiles`): the atlas holds two tiles (face, head and neck) each laid out
symmetrically about its own centre line, so flipping each tile gives the mirrored face,
whereas flipping the whole atlas would swap the tiles.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CHECKPOINT_FORMAT = 1
PRESETS = ("tiny", "small", "full")
MIN_RESOLUTION, MAX_RESOLUTION = 8, 256
_BASE_HEIGHT = 4  # the synthesis starts from a (4, 8) constant
_W_STATS_SAMPLES = 10_000
_W_STATS_SEED = 1234
_LRELU_GAIN = math.sqrt(2.0)


@dataclass(frozen=True)
class GanConfig:
    """The networks' shape and the training hyper-parameters that go with them (kept in the
    checkpoint, so a resumed run trains exactly as it started).

    resolution: T, the atlas height (the atlas is (3, T, 2T)); a power of two.
    channel_base / channel_max: a layer at height r has min(channel_base // r, channel_max)
    channels. r1_gamma: the R1 weight; r1_interval: it is applied every this many steps
    (lazy regularisation). ema_kimg: the generator's moving average half-life, in thousands
    of images. ada_*: the augmentation probability's target sign of D(real), update
    interval (steps) and speed (thousands of images for p to go from 0 to 1). fill_weight:
    the pull of texels that (almost) no photo trusts towards the data's mean atlas (D never
    judges them, so nothing else would keep them skin).
    """

    resolution: int = 128
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    channel_base: int = 16384
    channel_max: int = 512
    batch: int = 32
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    r1_gamma: float = 0.2
    r1_interval: int = 16
    ema_kimg: float = 10.0
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 100.0
    fill_weight: float = 1.0

    def channels(self, height: int) -> int:
        return min(self.channel_base // height, self.channel_max)


def preset(name: str, resolution: int | None = None, batch: int | None = None) -> GanConfig:
    """A named configuration: tiny (16 x 32, steps in a fraction of a second on a CPU: tests),
    small (64 x 128, a short GPU run) or full (128 x 256, the GPU model; 24.5 M generator and
    28 M discriminator parameters). R1's weight follows the StyleGAN2-ADA rule of thumb
    (0.0002 * pixels / batch, for a (T, 2T) atlas)."""
    base = {
        "tiny": GanConfig(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256,
                          channel_max=16, batch=8, r1_interval=4, ema_kimg=0.05,
                          ada_interval=2, ada_kimg=1.0),
        "small": GanConfig(resolution=64, z_dim=128, w_dim=128, mapping_layers=4,
                           channel_base=4096, channel_max=128, batch=16, ema_kimg=1.0,
                           ada_kimg=20.0),
        "full": GanConfig(),
    }[name]
    config = replace(base, resolution=resolution or base.resolution, batch=batch or base.batch)
    gamma = 0.0002 * 2 * config.resolution**2 / config.batch
    return replace(config, r1_gamma=round(gamma, 4))


def check_resolution(resolution: int) -> bool:
    """Whether T is a power of two the networks support."""
    return (MIN_RESOLUTION <= resolution <= MAX_RESOLUTION
            and resolution & (resolution - 1) == 0)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2) * _LRELU_GAIN


class _Linear(nn.Module):
    """A fully connected layer with an equalised learning rate: weights are stored at unit
    scale and scaled at run time, so Adam moves every layer at the same relative speed;
    lr_mul slows a layer down (the mapping network's)."""

    def __init__(self, n_in: int, n_out: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((n_out,), bias_init / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(n_in)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return _lrelu(x) if self.activate else x


class _Conv(nn.Module):
    """An equalised-learning-rate convolution, optionally halving the resolution after it."""

    def __init__(self, c_in: int, c_out: int, kernel: int, bias: bool = True,
                 activate: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(c_in * kernel * kernel)
        self.activate = activate
        self.down = down

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias,
                     padding=self.weight.shape[-1] // 2)
        if self.activate:
            x = _lrelu(x)
        return F.avg_pool2d(x, 2) if self.down else x


class _ModulatedConv(nn.Module):
    """(B, C_in, H, W), w (B, w_dim) -> (B, C_out, H', W'): a convolution whose input
    channels are scaled per sample by a style computed from w, then (demodulate) each output
    channel renormalised to unit expected variance. up: bilinear 2x upsampling first."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, kernel: int = 3, up: bool = False,
                 demodulate: bool = True, activate: bool = True):
        super().__init__()
        self.affine = _Linear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.weight_gain = 1.0 / math.sqrt(c_in * kernel * kernel)
        self.up, self.demodulate, self.activate = up, demodulate, activate

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        batch, c_in, height, width = x.shape
        c_out, _, kernel, _ = self.weight.shape
        style = self.affine(w)  # (B, C_in)
        weight = self.weight[None] * self.weight_gain * style[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True)
                                          + 1e-8)
        # one grouped convolution runs every sample with its own weights
        out = F.conv2d(x.reshape(1, batch * c_in, height, width),
                       weight.reshape(batch * c_out, c_in, kernel, kernel),
                       padding=kernel // 2, groups=batch)
        out = out.reshape(batch, c_out, height, width) + self.bias.to(out.dtype)[:, None, None]
        return _lrelu(out) if self.activate else out


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> w (B, w_dim). z is normalised to unit second moment first."""

    def __init__(self, config: GanConfig):
        super().__init__()
        dims = [config.z_dim] + [config.w_dim] * config.mapping_layers
        self.layers = nn.Sequential(*[_Linear(a, b, lr_mul=0.01, activate=True)
                                      for a, b in zip(dims[:-1], dims[1:], strict=True)])

    def forward(self, z: Tensor) -> Tensor:
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        return self.layers(z)


class _SynthesisBlock(nn.Module):
    """One resolution of the synthesis: x (B, C_in, H, W) -> features (B, C_out, H', W') and
    their RGB (B, 3, H', W'); H' = 2H unless it is the first block."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, first: bool):
        super().__init__()
        self.convs = nn.ModuleList(
            [_ModulatedConv(c_in, c_out, w_dim)] if first
            else [_ModulatedConv(c_in, c_out, w_dim, up=True), _ModulatedConv(c_out, c_out, w_dim)])
        self.to_rgb = _ModulatedConv(c_out, 3, w_dim, kernel=1, demodulate=False,
                                     activate=False)

    def forward(self, x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        for conv in self.convs:
            x = conv(x, w)
        return x, self.to_rgb(x, w)


class SynthesisNetwork(nn.Module):
    """w (B, w_dim) -> atlas (B, 3, T, 2T), roughly in [-1, 1] (not clamped: the
    discriminator sees what the generator makes)."""

    def __init__(self, config: GanConfig):
        super().__init__()
        heights = [_BASE_HEIGHT * 2**i
                   for i in range(int(math.log2(config.resolution // _BASE_HEIGHT)) + 1)]
        channels = [config.channels(h) for h in heights]
        self.const = nn.Parameter(torch.randn(channels[0], _BASE_HEIGHT, 2 * _BASE_HEIGHT))
        self.blocks = nn.ModuleList(
            _SynthesisBlock(channels[max(i - 1, 0)], channels[i], config.w_dim, first=i == 0)
            for i in range(len(heights)))

    def forward(self, w: Tensor) -> Tensor:
        x, rgb = self.blocks[0](self.const[None].expand(w.shape[0], -1, -1, -1), w)
        for block in self.blocks[1:]:
            x, block_rgb = block(x, w)
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear",
                                align_corners=False) + block_rgb
        return rgb


class Generator(nn.Module):
    """z (B, z_dim) -> atlas (B, 3, T, 2T) in about [-1, 1]."""

    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        self.mapping = MappingNetwork(config)
        self.synthesis = SynthesisNetwork(config)

    def forward(self, z: Tensor) -> Tensor:
        return self.synthesis(self.mapping(z))


def _minibatch_std(x: Tensor) -> Tensor:
    """Append the feature standard deviation across a group of samples as one channel, so
    D can see a lack of variety (mode collapse). x (B, C, H, W) -> (B, C + 1, H, W)."""
    batch, _, height, width = x.shape
    group = max(g for g in range(1, min(4, batch) + 1) if batch % g == 0)
    y = x.float().reshape(group, -1, *x.shape[1:])
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B / group,)
    std = std.repeat(group).reshape(batch, 1, 1, 1).expand(batch, 1, height, width)
    return torch.cat([x, std.to(x.dtype)], dim=1)


class Discriminator(nn.Module):
    """image (B, 3, T, 2T) in [-1, 1], trust mask (B, 1, T, 2T) in {0, 1} -> logits (B,).

    Residual blocks down to (4, 8), a minibatch-std channel, then two dense layers. The
    input is image * mask and mask: texels with mask 0 do not reach the network.
    """

    def __init__(self, config: GanConfig):
        super().__init__()
        top = config.channels(config.resolution)
        self.from_rgb = _Conv(4, top, kernel=1)
        self.blocks = nn.ModuleList()
        self.skips = nn.ModuleList()
        height = config.resolution
        while height > _BASE_HEIGHT:
            c_in, c_out = config.channels(height), config.channels(height // 2)
            self.blocks.append(nn.Sequential(_Conv(c_in, c_in, 3),
                                             _Conv(c_in, c_out, 3, down=True)))
            self.skips.append(_Conv(c_in, c_out, 1, bias=False, activate=False, down=True))
            height //= 2
        last = config.channels(_BASE_HEIGHT)
        self.epilogue_conv = _Conv(last + 1, last, 3)
        self.fc = _Linear(last * _BASE_HEIGHT * 2 * _BASE_HEIGHT, last, activate=True)
        self.out = _Linear(last, 1)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        x = self.from_rgb(torch.cat([image * mask, mask], dim=1))
        for block, skip in zip(self.blocks, self.skips, strict=True):
            x = (block(x) + skip(x)) / math.sqrt(2.0)
        x = self.epilogue_conv(_minibatch_std(x))
        return self.out(self.fc(x.flatten(1)))[:, 0]


# ----------------------------------------------------------------------------- augmentation


def mirror_tiles(x: Tensor) -> Tensor:
    """(B, C, T, 2T) -> each of the atlas's two T x T tiles flipped left-right: the mirrored
    face (the tiles are symmetric about their own centre lines)."""
    batch, channels, height, width = x.shape
    return x.reshape(batch, channels, height, 2, width // 2).flip(-1).reshape(x.shape)


def _translate(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """x (B, C, H, W) shifted by whole texels dy, dx (B,) int; texels shifted in are 0."""
    batch, channels, height, width = x.shape
    rows = torch.arange(height, device=x.device)[None] - dy[:, None]  # (B, H) source rows
    cols = torch.arange(width, device=x.device)[None] - dx[:, None]  # (B, W)
    valid = (((rows >= 0) & (rows < height))[:, :, None]
             & ((cols >= 0) & (cols < width))[:, None, :])  # (B, H, W)
    index = rows.clamp(0, height - 1)[:, :, None] * width + cols.clamp(0, width - 1)[:, None]
    out = x.flatten(2).gather(2, index.flatten(1)[:, None].expand(-1, channels, -1))
    return out.view_as(x) * valid[:, None].to(x.dtype)


def augment(image: Tensor, mask: Tensor, p: float,
            generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """ADA-style augmentation of what D sees, differentiable in the image.

    image (B, 3, T, 2T) in [-1, 1]; mask (B, 1, T, 2T). Each of brightness, contrast,
    saturation, translation (up to T/8) and cutout (a T/2 x T box, made untrusted) is applied
    to a sample with probability p. Colour statistics use trusted texels only, so untrusted
    texels stay out of D's verdict. Random numbers come from `generator` (CPU), so a run
    is reproducible and resumable.
    """
    if p <= 0:
        return image, mask
    batch, _, height, width = image.shape
    device = image.device

    def chosen() -> Tensor:  # (B, 1, 1, 1): which samples get this augmentation
        return (torch.rand(batch, generator=generator) < p).float().view(-1, 1, 1, 1).to(device)

    def normal(std: float) -> Tensor:
        return (torch.randn(batch, generator=generator) * std).view(-1, 1, 1, 1).to(device)

    image = image + normal(0.2) * chosen()
    weight = mask.sum(dim=(2, 3), keepdim=True).clamp(min=1.0)
    mean = (image * mask).sum(dim=(2, 3), keepdim=True) / weight  # (B, 3, 1, 1)
    contrast = torch.exp2(normal(0.5) * chosen())
    image = (image - mean) * contrast + mean
    luma = image.mean(dim=1, keepdim=True)
    saturation = torch.exp2(normal(1.0) * chosen())
    image = (image - luma) * saturation + luma

    limit = height // 8
    shift = torch.randint(-limit, limit + 1, (2, batch), generator=generator)
    shift = (shift * (torch.rand(batch, generator=generator) < p)).to(device)
    both = _translate(torch.cat([image, mask], dim=1), shift[0], shift[1])
    image, mask = both[:, :3], both[:, 3:]

    centre_y = (torch.rand(batch, generator=generator) * height).to(device)
    centre_x = (torch.rand(batch, generator=generator) * width).to(device)
    ys = torch.arange(height, device=device)[None, :, None]
    xs = torch.arange(width, device=device)[None, None, :]
    box = (((ys - centre_y[:, None, None]).abs() < height / 4)
           & ((xs - centre_x[:, None, None]).abs() < width / 4))  # (B, H, W)
    keep = 1.0 - box[:, None].float() * chosen()
    return image * keep, mask * keep


# ----------------------------------------------------------------------------- the model


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """A training checkpoint (see `engine.texture.train`); ValueError when the file is
    unreadable or of another format."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path} is not a readable checkpoint: {error}") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a GAN texture checkpoint of format "
                         f"{CHECKPOINT_FORMAT}")
    return state


class GanTextureModel:
    """The trained (moving-average) generator as a texture model for the fitter.

    The latent is w (1, w_dim), a point of the style space: fitting there is what GANFit
    does, and W is less curved than z. It starts at the mean w; the prior is the squared
    distance to the mean in units of w's per-dimension standard deviation (a diagonal
    Gaussian fitted to mapped z), averaged over dimensions. decode: (1, 3, T, 2T) albedo in
    [0, 1], the atlas layout of the linear model.
    """

    name = "gan-uv"

    def __init__(self, generator: Generator, info: dict | None = None):
        self.generator = generator.eval().requires_grad_(False)
        self.info = info or {}
        device = generator.synthesis.const.device
        noise = torch.Generator().manual_seed(_W_STATS_SEED)
        z = torch.randn(_W_STATS_SAMPLES, generator.config.z_dim, generator=noise)
        with torch.no_grad():
            w = generator.mapping(z.to(device))
        self.w_mean = w.mean(dim=0, keepdim=True)  # (1, w_dim)
        self.w_std = w.std(dim=0, keepdim=True).clamp(min=1e-6)  # (1, w_dim)

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu") -> GanTextureModel:
        state = load_checkpoint(path, device)
        generator = Generator(GanConfig(**state["config"])).to(device)
        generator.load_state_dict(state["generator_ema"])
        return cls(generator, state["info"])

    def initial_latent(self) -> Tensor:
        return self.w_mean.clone()

    def decode(self, latent: Tensor) -> Tensor:
        """latent (1, w_dim) -> albedo (1, 3, T, 2T) in [0, 1]."""
        return ((self.generator.synthesis(latent) + 1.0) / 2.0).clamp(0.0, 1.0)

    def prior(self, latent: Tensor) -> Tensor:
        return ((latent - self.w_mean) / self.w_std).square().mean()
