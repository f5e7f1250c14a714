"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1) rebuilt in torch.

The weights ship in the `face_recognition_models` PyPI package (CC0) as a dlib-serialised
network. This module reads that file with numpy, following dlib's own serialisation code
(dlib/serialize.h: integers, floats, strings, bools; dlib/dnn/tensor.h: tensors;
dlib/dnn/core.h: add_layer / add_tag_layer / add_skip_layer / add_loss_layer;
dlib/dnn/layers.h and input.h: the layer details), and builds the same network as
`anet_type` in dlib's examples/dnn_face_recognition_ex.cpp:

    loss_metric<fc_no_bias<128, avg_pool_everything<
        level0<level1<level2<level3<level4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

with residual blocks `relu(x + affine(con3x3(relu(affine(con3x3(x))))))` and downsampling
blocks whose shortcut is a 2x2 average pool of x. dlib's add_prev adds tensors of different
shapes by zero-padding both to the larger channel count and spatial size (bottom/right),
which matters here: in level1 the block gives 3x3 while the pooled shortcut gives 4x4.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import MissingAssetError
from engine.identity.base import IdentityNetwork

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class DlibFormatError(ValueError):
    """The file is not the dlib network this module knows how to read."""


class _Reader:
    """Sequential reader for dlib's serialisation primitives (dlib/serialize.h)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of file at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int_(self) -> int:
        """pack_int: a control byte (bit 7 = negative, low 4 bits = byte count), then LE bytes."""
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8:
            raise DlibFormatError(f"bad integer control byte {control:#x} at {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float_(self) -> float:
        """float_details: int64 mantissa and int16 exponent, value = mantissa * 2**exponent."""
        mantissa = self.int_()
        exponent = self.int_()
        return math.ldexp(float(mantissa), exponent)

    def bool_(self) -> bool:
        """dlib writes bools as the characters '1' and '0'."""
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool byte {ch!r} at {self.pos - 1}")
        return ch == b"1"

    def string(self) -> str:
        return self._take(self.int_()).decode("latin-1")

    def tensor(self) -> np.ndarray:
        """A resizable_tensor: version, (n, k, nr, nc), then the values.

        Version 2 stores little-endian float32; version 1 (older dlib) stores each value as
        a dlib float (mantissa, exponent).
        """
        version = self.int_()
        shape = tuple(self.int_() for _ in range(4))
        count = int(np.prod(shape))
        if version == 2:
            values = np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)
        elif version == 1:
            values = np.array([self.float_() for _ in range(count)], dtype=np.float32)
        else:
            raise DlibFormatError(f"unknown tensor version {version}")
        return values.reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        if self.int_() != 1:
            raise DlibFormatError("unknown alias_tensor version")
        return tuple(self.int_() for _ in range(4))  # type: ignore[return-value]

    def expect(self, version: str) -> None:
        found = self.string()
        if found != version:
            raise DlibFormatError(f"expected {version!r}, found {found!r} at byte {self.pos}")


@dataclass
class DlibLayer:
    """One computational layer read from the file (input side first)."""

    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    params: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# The network's structure, outermost layer first, as dlib's templates nest it. "layer"
# entries are add_layer (they have details in the stream), "tag"/"skip" carry no details.


def _block() -> list[tuple[str, ...]]:
    # block<N,BN,stride> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    return [("layer", "affine"), ("layer", "con"), ("layer", "relu"), ("layer", "affine"),
            ("layer", "con")]


def _ares() -> list[tuple[str, ...]]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [("layer", "relu"), ("layer", "add_prev"), *_block(), ("tag",)]


def _ares_down() -> list[tuple[str, ...]]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [("layer", "relu"), ("layer", "add_prev"), ("layer", "avg_pool"), ("skip",),
            ("tag",), *_block(), ("tag",)]


# Residual stages from the input side: (channels, downsample first, number of blocks).
STAGES: tuple[tuple[int, bool, int], ...] = (
    (32, False, 3),  # level4
    (64, True, 4),  # level3
    (128, True, 3),  # level2
    (256, True, 3),  # level1
    (256, True, 1),  # level0
)


def _structure() -> list[tuple[str, ...]]:
    inner_to_outer: list[list[tuple[str, ...]]] = []
    for _channels, down, count in STAGES:
        for i in range(count):
            inner_to_outer.append(_ares_down() if down and i == 0 else _ares())
    outer: list[tuple[str, ...]] = [("layer", "fc"), ("layer", "avg_pool")]
    for group in reversed(inner_to_outer):
        outer.extend(group)
    outer += [("layer", "max_pool"), ("layer", "relu"), ("layer", "affine"), ("input", "con")]
    return outer


def _read_details(r: _Reader, kind: str) -> DlibLayer:
    """The layer details as layers.h serialises them (con_4, affine_, relu_, ...)."""
    if kind == "con":
        r.expect("con_4")
        params = r.tensor().reshape(-1)
        num_filters, nr, nc = r.int_(), r.int_(), r.int_()
        stride = (r.int_(), r.int_())
        padding = (r.int_(), r.int_())
        filters, biases = r.alias_tensor(), r.alias_tensor()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float_()
        n_w = int(np.prod(filters))
        weight = params[:n_w].reshape(filters)
        bias = params[n_w : n_w + int(np.prod(biases))]
        if weight.shape[0] != num_filters or weight.shape[2:] != (nr, nc):
            raise DlibFormatError("con_ filter shape does not match its header")
        return DlibLayer("con", {"weight": weight, "bias": bias, "stride": stride,
                                 "padding": padding})
    if kind == "affine":
        r.expect("affine_")
        params = r.tensor().reshape(-1)
        gamma, beta = r.alias_tensor(), r.alias_tensor()
        mode = r.int_()
        if mode != 0:  # CONV_MODE: one gamma/beta per channel
            raise DlibFormatError("only per-channel (CONV_MODE) affine layers are supported")
        n, m = int(np.prod(gamma)), int(np.prod(beta))
        return DlibLayer("affine", {"gamma": params[:n], "beta": params[n : n + m]})
    if kind == "relu":
        r.expect("relu_")
        return DlibLayer("relu")
    if kind in ("max_pool", "avg_pool"):
        r.expect(f"{kind}_2")
        nr, nc, sy, sx, py, px = (r.int_() for _ in range(6))
        return DlibLayer(kind, {"size": (nr, nc), "stride": (sy, sx), "padding": (py, px)})
    if kind == "add_prev":
        r.expect("add_prev_")
        return DlibLayer("add_prev")
    if kind == "fc":
        r.expect("fc_2")
        num_outputs, num_inputs = r.int_(), r.int_()
        params = r.tensor().reshape(-1)
        weights, _biases = r.alias_tensor(), r.alias_tensor()
        if r.int_() != 1:  # FC_NO_BIAS
            raise DlibFormatError("expected an fc_no_bias layer")
        for _ in range(4):
            r.float_()
        w = params[: int(np.prod(weights))].reshape(num_inputs, num_outputs)
        return DlibLayer("fc", {"weight": w})
    raise DlibFormatError(f"unknown layer kind {kind}")


def _read_tail(r: _Reader, version: int) -> None:
    """add_layer's state after the details: three bools and cached tensors (unused)."""
    for _ in range(3):
        r.bool_()
    r.tensor()  # x_grad
    r.tensor()  # cached_output
    r.tensor()  # params_grad (version 2) / grad_final (input layer)
    if version == 3:
        r.int_()  # _sample_expansion_factor


@dataclass
class DlibNetFile:
    """What the .dat holds: the input mean and the layers from input to output."""

    input_mean: tuple[float, float, float]
    input_size: int
    layers: list[DlibLayer]


def read_dlib_net(path: Path) -> DlibNetFile:
    """Parse dlib_face_recognition_resnet_model_v1.dat (numpy only, no dlib needed)."""
    r = _Reader(Path(path).read_bytes())
    if r.int_() != 1:
        raise DlibFormatError("unknown add_loss_layer version")
    r.expect("loss_metric_2")
    r.float_(), r.float_()  # margin, distance threshold
    structure = _structure()
    versions: list[int] = []
    for entry in structure:
        version = r.int_()
        kind = entry[0]
        ok = {"layer": (1, 2), "tag": (1,), "skip": (1,), "input": (2, 3)}[kind]
        if version not in ok:
            raise DlibFormatError(f"unexpected {kind} version {version} at byte {r.pos}")
        versions.append(version)
    r.expect("input_rgb_image_sized")
    mean = (r.float_(), r.float_(), r.float_())
    nr, nc = r.int_(), r.int_()
    if nr != nc:
        raise DlibFormatError("input is not square")
    layers: list[DlibLayer] = []
    for entry, version in zip(reversed(structure), reversed(versions), strict=True):
        if entry[0] in ("layer", "input"):
            layers.append(_read_details(r, entry[1]))
            _read_tail(r, version)
    if r.pos != len(r.data):
        raise DlibFormatError(f"{len(r.data) - r.pos} unread bytes at the end of the file")
    return DlibNetFile(mean, nr, layers)


# ---------------------------------------------------------------------------------------


def _pad_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's tt::add for tensors of different shapes: zero-pad both to the larger one.

    a, b: (B, C, H, W) -> (B, max C, max H, max W), padding channels at the end and
    rows/columns at the bottom/right, as dlib indexes both from the top-left.
    """
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


class _Affine(nn.Module):
    """Per-channel scale and shift (dlib's affine_, a frozen batch norm)."""

    gamma: torch.Tensor
    beta: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("gamma", torch.ones(channels))
        self.register_buffer("beta", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[None, :, None, None] + self.beta[None, :, None, None]


class _Block(nn.Module):
    """relu(shortcut(x) + affine(con3x3(relu(affine(con3x3/stride(x))))))."""

    def __init__(self, c_in: int, c_out: int, down: bool) -> None:
        super().__init__()
        stride, pad = (2, 0) if down else (1, 1)
        self.down = down
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, pad)
        self.aff1 = _Affine(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.aff2 = _Affine(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_pad_add(shortcut, y))


class DlibResNet(IdentityNetwork):
    """dlib's 128-D face descriptor network on 150x150 aligned chips.

    `features` returns the outputs of the four residual stages at 35, 17, 8 and 4 pixels
    (32, 64, 128 and 256 channels): level4..level1 in dlib's naming. The raw 128-D
    descriptor (what dlib's compute_face_descriptor returns) is `descriptor`; `embed` is it
    L2-normalised.
    """

    name = "dlib"
    input_size = 150
    embedding_dim = 128
    mean: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(3))
        self.conv0 = nn.Conv2d(3, 32, 7, 2, 0)
        self.aff0 = _Affine(32)
        stages = []
        c_in = 32
        for channels, down, count in STAGES:
            blocks = [_Block(c_in if i == 0 else channels, channels, down and i == 0)
                      for i in range(count)]
            stages.append(nn.Sequential(*blocks))
            c_in = channels
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(256, 128, bias=False)

    def _normalise(self, chips: torch.Tensor) -> torch.Tensor:
        # input_rgb_image_sized::to_tensor: (pixel - mean) / 256 with pixels in 0..255.
        return (chips * 255.0 - self.mean[None, :, None, None]) / 256.0

    def _trunk(self, chips: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.aff0(self.conv0(self._normalise(chips))))
        x = F.max_pool2d(x, 3, 2)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def descriptor(self, chips: torch.Tensor) -> torch.Tensor:
        """chips (B, 3, 150, 150) RGB in [0, 1] -> (B, 128) dlib descriptor, not normalised."""
        self.check_chips(chips)
        x = self._trunk(chips)[-1]
        return self.fc(x.mean(dim=(2, 3)))

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.descriptor(chips), dim=1)

    def features(self, chips: torch.Tensor) -> list[torch.Tensor]:
        self.check_chips(chips)
        return self._trunk(chips)[:4]

    def embed_and_features(self, chips: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self.check_chips(chips)
        stages = self._trunk(chips)
        return F.normalize(self.fc(stages[-1].mean(dim=(2, 3))), dim=1), stages[:4]

    @classmethod
    def from_dlib_file(cls, path: Path) -> DlibResNet:
        """Build the network with the weights of a dlib .dat file."""
        net_file = read_dlib_net(path)
        if net_file.input_size != cls.input_size:
            raise DlibFormatError(f"expected a {cls.input_size}px input layer")
        net = cls()
        layers = iter(net_file.layers)

        def take(kind: str) -> DlibLayer:
            layer = next(layers)
            if layer.kind != kind:
                raise DlibFormatError(f"expected {kind}, found {layer.kind}")
            return layer

        def load_conv(conv: nn.Conv2d, layer: DlibLayer) -> None:
            if tuple(conv.stride) != layer.params["stride"] or tuple(
                conv.padding
            ) != layer.params["padding"]:
                raise DlibFormatError("convolution stride/padding differ from the known net")
            conv.weight.data.copy_(torch.from_numpy(layer.params["weight"]))
            assert conv.bias is not None  # dlib's convolutions all have a bias
            conv.bias.data.copy_(torch.from_numpy(layer.params["bias"]))

        def load_affine(aff: _Affine, layer: DlibLayer) -> None:
            aff.gamma.copy_(torch.from_numpy(layer.params["gamma"]))
            aff.beta.copy_(torch.from_numpy(layer.params["beta"]))

        with torch.no_grad():
            net.mean.copy_(torch.tensor(net_file.input_mean))
            load_conv(net.conv0, take("con"))
            load_affine(net.aff0, take("affine"))
            take("relu")
            pool = take("max_pool").params
            if pool["size"] != (3, 3) or pool["stride"] != (2, 2) or pool["padding"] != (0, 0):
                raise DlibFormatError("unexpected max_pool geometry")
            for stage in net.stages:
                for block in cast(Iterable[_Block], stage.children()):
                    load_conv(block.conv1, take("con"))
                    load_affine(block.aff1, take("affine"))
                    take("relu")
                    load_conv(block.conv2, take("con"))
                    load_affine(block.aff2, take("affine"))
                    if block.down:
                        take("avg_pool")
                    take("add_prev")
                    take("relu")
            take("avg_pool")
            net.fc.weight.copy_(torch.from_numpy(take("fc").params["weight"].T.copy()))
        if next(layers, None) is not None:
            raise DlibFormatError("the file has more layers than the known net")
        return net.eval()


def dlib_model_path() -> Path:
    """The .dat file inside the installed face_recognition_models package.

    The package itself is not imported: its __init__ needs pkg_resources, which recent
    setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(
            "dlib's face-recognition network is missing: pip install face_recognition_models "
            "into the engine's Python"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILE
    if not path.is_file():
        raise MissingAssetError(f"{path} is missing: reinstall face_recognition_models")
    return path


def load_dlib_resnet(device: str | torch.device = "cpu") -> DlibResNet:
    """The dlib network, read straight from the package's .dat file.

    Parsing and building take about 0.1 s on one CPU core (measured), so no converted copy
    is cached: there is nothing to keep in sync with the installed package.
    """
    return DlibResNet.from_dlib_file(dlib_model_path()).freeze().to(device)
