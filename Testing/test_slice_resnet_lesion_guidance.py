"""slice-resnet lesion guidance: the mask follows its slice through the framing, the class activation map is what
the logit averages, and the guided term learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from CovidCTAnalysis.classifiers.slice_resnet import inputs
from CovidCTAnalysis.classifiers.slice_resnet.lesion_guidance import cam, guidance_loss, square_with_mask
from CovidCTAnalysis.classifiers.slice_resnet.model import build_model
from CovidCTAnalysis.classifiers.slice_resnet.train import TrainConfig, fit


def test_the_mask_is_framed_with_its_slice():
    """A figure with blank borders is trimmed and padded square: its lesion mask must land on the same pixels."""
    hu = np.full((300, 200), -1350.0, np.float32)                  # blank (air) border all round
    hu[40:260, 30:170] = -800.0                                       # the "chest"
    rng = np.random.default_rng(0)
    hu[40:260, 30:170] += rng.normal(0, 60, (220, 140)).astype(np.float32)
    hu[100:140, 60:90] = 0.0                                          # a dense "lesion"
    mask = np.zeros(hu.shape, np.uint8)
    mask[100:140, 60:90] = 1
    square, fraction = square_with_mask(hu, mask)
    assert square.shape == fraction.shape == (inputs.CACHE_SIZE, inputs.CACHE_SIZE)
    assert np.array_equal(square, inputs.square_from_hu(hu))          # the image is framed exactly as a figure
    lesion = fraction > 0.5
    assert lesion.sum() > 100
    assert square[lesion].mean() > 0.85 and square[~lesion & (square > 0)].mean() < 0.5


def test_the_logit_is_the_mean_of_the_class_activation_map():
    net = build_model("efficientnet-lite0").eval()
    x = torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        feats = net.features(x)
        assert torch.allclose(cam(net, feats).mean(dim=(2, 3)), net(x), atol=1e-5)
        assert torch.allclose(net.classify_features(feats), net(x))


def test_guided_fit_lowers_the_guidance_loss():
    """Random figures plus squares whose bright quarter is the 'infection': the CAM learns to find it."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (8, 256, 256), dtype=np.uint8)
    y = np.array([0, 1] * 4, np.float32)
    gx = rng.integers(0, 60, (16, 256, 256), dtype=np.uint8)
    gm = np.zeros_like(gx)
    for i in range(16):
        r, c = rng.integers(0, 2, 2) * 128
        gx[i, r:r + 128, c:c + 128] += 150
        gm[i, r:r + 128, c:c + 128] = 255
    cfg = TrainConfig(pretrained="none", epochs=16, batch=8, crop=192, input_size=224, threads=1, lesion_guidance=1.0,
                      lr=2e-3)
    fit(x, y, cfg, seed=0, say=lambda s: None, guide={"x": gx, "mask": gm})
    losses = [e["guidance_loss"] for e in cfg.log]            # one step per epoch: compare the ends' means
    assert len(losses) == 16 and np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses


def test_guidance_refuses_what_it_cannot_train():
    x = np.zeros((4, 256, 256), np.uint8)
    y = np.array([0, 1, 0, 1], np.float32)
    with pytest.raises(ValueError, match="lesion guidance"):
        fit(x, y, TrainConfig(pretrained="none", epochs=1, batch=2, crop=192, input_size=224, lesion_guidance=1.0),
            seed=0, say=lambda s: None)
    with pytest.raises(ValueError, match="lesion guidance"):
        fit(x, y, TrainConfig(backbone="resnet18", pretrained="none", epochs=1, batch=2, crop=192, input_size=224,
                              lesion_guidance=1.0),
            seed=0, say=lambda s: None, guide={"x": x, "mask": x})
    with pytest.raises(ValueError, match="224 px inputs only"):  # its squares are cached for the paper's input
        fit(x, y, TrainConfig(pretrained="none", epochs=1, batch=2, lesion_guidance=1.0), seed=0,
            say=lambda s: None, guide={"x": x, "mask": x})


def test_guidance_loss_is_small_where_the_map_agrees():
    net = build_model("efficientnet-lite0").eval()
    feats = torch.zeros(1, 1280, 4, 4)
    feats[0, :, :2, :2] = 1.0
    with torch.no_grad():
        net._fc.weight.fill_(0.01)
        net._fc.bias.fill_(-6.0)                  # cells without features: strongly "no infection"
    agree = torch.zeros(1, 1, 64, 64)
    agree[..., :32, :32] = 1.0                    # the infected quarter is where the features are
    wrong = torch.flip(agree, dims=(-1,))
    with torch.no_grad():
        assert guidance_loss(net, feats, agree) < guidance_loss(net, feats, wrong)
