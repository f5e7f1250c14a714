"""insightface's ArcFace as a torch module: ONNX conversion and the network wrapper.

Fetching, importing and caching the models is engine.assets.arcface's job; this module
turns an ONNX graph into a torch module (onnx2torch, checked against onnxruntime) and wraps
it as an IdentityNetwork with embedding and inner-feature outputs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import MissingAssetError
from engine.identity.base import IdentityNetwork

INPUT_SIZE = 112


def _input_normalisation(model) -> tuple[float, float]:
    """insightface's rule (model_zoo/arcface_onnx.py): a graph that starts with Sub/Mul
    normalises inside, so it takes raw 0..255 pixels; otherwise (x - 127.5) / 127.5."""
    ops = [node.op_type for node in model.graph.node[:8]]
    if any(op in ("Sub", "Mul") for op in ops):
        return 0.0, 1.0
    return 127.5, 127.5


def _check_graph(model) -> None:
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise MissingAssetError(f"the ArcFace ONNX graph is invalid: {error}") from error
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) != 4 or shape[1:] != [3, INPUT_SIZE, INPUT_SIZE]:
        raise MissingAssetError(f"the ArcFace model takes input {shape}, not (N, 3, 112, 112)")


def _add_feature_layers(module: nn.Module) -> list[str]:
    """Names of the residual additions that end each resolution (the stage outputs).

    A probe forward records every 4-D output of an Add; for each spatial size below the
    input's, the last one is kept: for iresnet50 the outputs of its four stages at 56, 28,
    14 and 7 pixels.
    """
    from onnx2torch.node_converters.binary_math_operations import OnnxBinaryMathOperation

    seen: list[tuple[str, int]] = []
    hooks = []
    for name, sub in module.named_modules():
        if isinstance(sub, OnnxBinaryMathOperation) and sub.math_op_function is torch.add:
            def hook(_m, _i, out, name=name):
                if out.ndim == 4:
                    seen.append((name, out.shape[-1]))
            hooks.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    finally:
        for h in hooks:
            h.remove()
    last: dict[int, str] = {}
    for name, size in seen:
        if size < INPUT_SIZE:
            last[size] = name
    return [last[s] for s in sorted(last, reverse=True)]


def convert_onnx(onnx_bytes: bytes) -> tuple[nn.Module, dict]:
    """ONNX bytes -> (torch module, metadata); checks the conversion against onnxruntime."""
    import onnx
    from onnx2torch import convert

    try:
        model = onnx.load_from_string(onnx_bytes)
    except Exception as error:  # onnx raises DecodeError and others on garbage
        raise MissingAssetError(
            f"the ArcFace model is not a readable ONNX file ({error})"
        ) from error
    _check_graph(model)
    mean, std = _input_normalisation(model)
    module = convert(model).eval()
    probe = np.random.default_rng(0).uniform(-1, 1, (2, 3, INPUT_SIZE, INPUT_SIZE))
    probe = probe.astype(np.float32)
    with torch.no_grad():
        out = module(torch.from_numpy(probe)).numpy()
    if out.ndim != 2 or not np.isfinite(out).all():
        raise MissingAssetError(f"the converted ArcFace model gives output {out.shape}")
    max_err = None
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None:
        session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        ref = session.run(None, {session.get_inputs()[0].name: probe})[0]
        max_err = float(np.abs(ref - out).max() / max(np.abs(ref).max(), 1e-12))
        if max_err > 1e-4:
            raise MissingAssetError(
                f"ONNX-to-torch conversion differs from onnxruntime by {max_err:.2e}"
            )
    meta = {
        "input_size": INPUT_SIZE, "input_mean": mean, "input_std": std,
        "embedding_dim": int(out.shape[1]), "feature_layers": _add_feature_layers(module),
        "conversion_max_rel_error": max_err,
    }
    return module, meta


class ArcFaceNetwork(IdentityNetwork):
    """ArcFace on 112x112 chips aligned to insightface's 5-point template.

    `features` returns the outputs of the residual stages (the last residual Add at each
    resolution below 112 px; for iresnet50: 56, 28, 14 and 7 px), recorded by forward
    hooks during the same pass.
    """

    name = "arcface"
    input_size = INPUT_SIZE

    def __init__(self, module: nn.Module, meta: dict) -> None:
        super().__init__()
        self.module = module
        self.embedding_dim = int(meta["embedding_dim"])
        self.model_name = str(meta.get("model", "arcface"))
        self.input_mean = float(meta["input_mean"])
        self.input_std = float(meta["input_std"])
        self.feature_layers = list(meta["feature_layers"])
        self._captured: list[torch.Tensor] | None = None
        modules = dict(module.named_modules())
        for name in self.feature_layers:
            modules[name].register_forward_hook(self._capture)

    def _capture(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if self._captured is not None:
            self._captured.append(output)

    def _run(self, chips: torch.Tensor) -> torch.Tensor:
        self.check_chips(chips)
        # insightface feeds RGB (blobFromImage with swapRB on BGR input), 0..255 scaled.
        return self.module((chips * 255.0 - self.input_mean) / self.input_std)

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        return F.normalize(self._run(chips), dim=1)

    def features(self, chips: torch.Tensor) -> list[torch.Tensor]:
        return self.embed_and_features(chips)[1]

    def embed_and_features(self, chips: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._captured = []
        try:
            embedding = F.normalize(self._run(chips), dim=1)
            return embedding, self._captured
        finally:
            self._captured = None
