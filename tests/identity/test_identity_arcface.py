"""ArcFace: ONNX -> torch conversion, the verified download and offline import, loading."""

from __future__ import annotations

import http.server
import io
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.assets.arcface import arcface_dir, import_arcface, load_arcface
from engine.assets.arcface import install as install_arcface
from engine.assets.arcface import status as arcface_status
from engine.errors import MissingAssetError
from engine.identity import load_identity_network

ort = pytest.importorskip("onnxruntime")


def _onnxruntime_embed(onnx_bytes: bytes, chips: np.ndarray) -> np.ndarray:
    """Reference: insightface's preprocessing ((x*255 - 127.5) / 127.5) and onnxruntime."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    blob = ((chips * 255.0 - 127.5) / 127.5).astype(np.float32)
    out = session.run(None, {"data": blob})[0]
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture()
def installed(tmp_path, arcface_onnx):
    src = tmp_path / "w600k_r50.onnx"
    src.write_bytes(arcface_onnx)
    home = tmp_path / "home"
    import_arcface(src, home, log=lambda _m: None)
    return home


def test_converted_module_matches_onnxruntime_and_backpropagates(installed, arcface_onnx):
    net = load_arcface(installed)
    assert net is not None and net.name == "arcface" and net.input_size == 112
    chips = torch.rand(3, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    ref = _onnxruntime_embed(arcface_onnx, chips.numpy())
    chips.requires_grad_(True)
    emb = net.embed(chips)
    assert emb.shape == (3, 512)
    np.testing.assert_allclose(emb.detach().numpy(), ref, atol=1e-5, rtol=0)

    (emb * torch.randn(3, 512)).sum().backward()
    assert chips.grad is not None and chips.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in net.parameters())

    # The gradient is the right one: a directional derivative against a central finite
    # difference, in double precision.
    net = net.double()
    x = chips.detach().double().requires_grad_(True)
    direction = torch.randn(3, 3, 112, 112, generator=torch.Generator().manual_seed(1)).double()
    weights = torch.randn(3, 512, generator=torch.Generator().manual_seed(2)).double()
    (net.embed(x) * weights).sum().backward()
    analytic = (x.grad * direction).sum().item()
    with torch.no_grad():
        eps = 1e-8  # tiny: the many PRelu kinks make larger steps inexact
        plus = (net.embed(x + eps * direction) * weights).sum()
        minus = (net.embed(x - eps * direction) * weights).sum()
    numeric = ((plus - minus) / (2 * eps)).item()
    assert abs(analytic - numeric) < 1e-4 * max(1.0, abs(numeric))


def test_features_are_the_residual_stage_outputs(installed):
    net = load_arcface(installed)
    feats = net.features(torch.rand(2, 3, 112, 112))
    # the tiny graph has residual Adds at 56 and 28 px
    assert [tuple(f.shape) for f in feats] == [(2, 8, 56, 56), (2, 16, 28, 28)]
    assert net.features(torch.rand(1, 3, 112, 112))[0].shape[0] == 1  # no stale captures


def test_status_and_preference(installed, tmp_path):
    status = arcface_status(installed)
    assert status["installed"] and "non-commercial" in status["detail"]
    missing = arcface_status(tmp_path / "empty")
    assert not missing["installed"]
    assert "python -m engine assets fetch --with arcface" in missing["detail"]
    assert load_identity_network(home=installed).name == "arcface"
    assert load_identity_network(prefer=("dlib",), home=installed).name == "dlib"
    assert load_identity_network(prefer=("arcface",), home=tmp_path / "empty") is None


def _zip_bytes(onnx_bytes: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("w600k_r50.onnx", onnx_bytes)
        zf.writestr("README.txt", "test pack")
    return buf.getvalue()


@pytest.fixture()
def server(arcface_onnx, monkeypatch):
    """A local HTTP server with a good, a truncated and a tampered model pack."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    good = _zip_bytes(arcface_onnx)
    tampered = bytearray(good)
    middle = len(tampered) // 2
    tampered[middle : middle + 64] = bytes(64)
    routes = {"/good.zip": (good, len(good)), "/tampered.zip": (bytes(tampered), len(good)),
              "/truncated.zip": (good[: len(good) // 2], len(good))}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            body, length = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _nothing_installed(home: Path) -> None:
    assert not arcface_dir(home).exists()
    leftovers = list((home / "identity").iterdir()) if (home / "identity").exists() else []
    assert leftovers == []


def test_download_installs_a_good_pack(server, tmp_path):
    home = tmp_path / "home"
    messages: list[str] = []
    path = install_arcface(None, home, log=messages.append, url=f"{server}/good.zip")
    assert path == arcface_dir(home) and arcface_status(home)["installed"]
    assert any("non-commercial" in m for m in messages)
    assert sorted(p.name for p in (home / "identity").iterdir()) == ["arcface"]
    assert load_arcface(home).embed(torch.rand(1, 3, 112, 112)).shape == (1, 512)


@pytest.mark.parametrize("route", ["truncated.zip", "tampered.zip"])
def test_damaged_download_is_rejected(server, tmp_path, route):
    home = tmp_path / "home"
    with pytest.raises(MissingAssetError):
        install_arcface(None, home, log=lambda _m: None, url=f"{server}/{route}")
    _nothing_installed(home)


def test_checksum_mismatch_is_rejected(server, tmp_path):
    home = tmp_path / "home"
    with pytest.raises(MissingAssetError, match="sha256"):
        install_arcface(None, home, log=lambda _m: None, url=f"{server}/good.zip",
                        sha256="0" * 64)
    _nothing_installed(home)


def test_offline_import_from_zip_and_garbage(tmp_path, arcface_onnx):
    pack = tmp_path / "buffalo_l.zip"
    pack.write_bytes(_zip_bytes(arcface_onnx))
    home = tmp_path / "home"
    install_arcface(pack, home, log=lambda _m: None)
    assert arcface_status(home)["installed"]
    garbage = tmp_path / "w600k_r50.onnx"
    garbage.write_bytes(b"not a model" * 100)
    other = tmp_path / "other"
    with pytest.raises(MissingAssetError):
        import_arcface(garbage, other, log=lambda _m: None)
    _nothing_installed(other)
