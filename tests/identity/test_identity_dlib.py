"""The torch rebuild of dlib's face-recognition ResNet against dlib itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.identity.dlib_resnet import (
    DlibFormatError,
    DlibResNet,
    dlib_model_path,
    read_dlib_net,
)


def test_descriptor_matches_dlib_on_real_faces(faces, dlib_models, dlib_net):
    chips = np.stack([f.chip for f in faces])
    reference = np.stack(
        [np.array(dlib_models["rec"].compute_face_descriptor(c)) for c in chips]
    )
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        ours = dlib_net.descriptor(x).double().numpy()
    cos = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(
        reference, axis=1
    )
    assert len(faces) >= 5
    assert cos.min() >= 0.9999, cos
    assert np.abs(ours - reference).max() <= 1e-3


def test_file_structure_and_input_layer():
    net_file = read_dlib_net(dlib_model_path())
    # dlib's input_rgb_image_sized<150> for this model subtracts these means, divides by 256.
    assert net_file.input_size == 150
    np.testing.assert_allclose(net_file.input_mean, (122.782, 117.001, 104.298), atol=1e-3)
    kinds = [layer.kind for layer in net_file.layers]
    assert kinds.count("con") == 1 + 2 * 14  # stem + two per residual block
    assert kinds.count("add_prev") == 14
    assert kinds[-1] == "fc" and net_file.layers[-1].params["weight"].shape == (256, 128)


def test_truncated_file_is_rejected(tmp_path):
    data = dlib_model_path().read_bytes()
    bad = tmp_path / "cut.dat"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibFormatError):
        DlibResNet.from_dlib_file(bad)


def test_embedding_features_and_gradients(faces, dlib_net):
    chips = torch.cat([f.chip_tensor() for f in faces[:2]]).requires_grad_(True)
    emb = dlib_net.embed(chips)
    assert emb.shape == (2, 128)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    feats = dlib_net.features(chips)
    assert [tuple(f.shape[1:]) for f in feats] == [
        (32, 35, 35), (64, 17, 17), (128, 8, 8), (256, 4, 4)
    ]
    emb[0, 0].backward()
    assert chips.grad is not None and chips.grad[0].abs().sum() > 0
    assert chips.grad[1].abs().sum() == 0  # batch elements stay independent
    with pytest.raises(ValueError):
        dlib_net.embed(torch.zeros(1, 3, 112, 112))
