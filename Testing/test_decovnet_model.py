"""DeCoVNet (seed 002) layer shapes and parameter counts: Table I at the paper's T = 141 (shapes propagated on
torch's meta device: no arithmetic), the baselines of Tables VI and VII, and Table III's parameter counts."""

import pytest
import torch

from CovidCTAnalysis.classifiers.decovnet.model import (ARCHITECTURES, DeCoVNet, DeCoVNetFCClf, TwoDClfNet, build,
                                                        parameter_count)


def _stage_shapes(net: DeCoVNet, x: torch.Tensor) -> list[tuple]:
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in (net.backbone[3], net.backbone[4], net.backbone[5], net.backbone[6],
                       net.proclf[0], net.proclf[2], net.proclf[3], net.proclf[8])]
    with torch.no_grad():
        logits, features = net.forward_with_features(x)
    for h in hooks:
        h.remove()
    return shapes, logits, features


#: Slices of the paper's volumes (141 +- 16, §II-F1); odd, so T/2 rounds up (ceil_mode) to 71.
T_PAPER = 141


def test_table1_output_sizes_at_the_papers_length():
    net = DeCoVNet().eval().to("meta")
    t, half = T_PAPER, (T_PAPER + 1) // 2
    shapes, logits, features = _stage_shapes(net, torch.empty(1, 2, t, 224, 336, device="meta"))
    assert shapes == [
        (16, t, 56, 84),        # stem
        (64, t, 56, 84),        # ResBlock(16, 64)
        (64, half, 56, 84),     # MaxPool3d
        (128, half, 28, 42),    # ResBlock(64, 128)
        (128, 16, 28, 42),      # AdaptiveMaxPool3d
        (64, 16, 28, 42),       # Conv3d(128, 64) + ReLU
        (64, 4, 14, 21),        # MaxPool3d
        (32, 4, 14, 21),        # Conv3d(32, 32) + ReLU: the CAM features
    ]
    assert logits.shape == (1, 2)
    assert features.shape == (1, 32, 4, 14, 21)


def test_global_max_pool_feeds_the_fc():
    torch.manual_seed(0)
    net = DeCoVNet().eval()
    with torch.no_grad():
        logits, features = net.forward_with_features(torch.rand(1, 2, 6, 112, 168))
    assert torch.allclose(net.fc(features.amax(dim=(2, 3, 4))), logits)


def test_table1_kernels_and_parameters():
    net = DeCoVNet()
    stem = net.backbone[0]
    assert (stem.in_channels, stem.out_channels, stem.kernel_size) == (2, 16, (5, 7, 7))
    rb1, rb2 = net.backbone[4], net.backbone[6]
    assert rb1.conv1.kernel_size == (3, 1, 1) and rb1.conv2.kernel_size == (1, 3, 3)
    assert rb1.shortcut[0].kernel_size == (1, 1, 1)
    assert (rb2.conv1.in_channels, rb2.conv2.out_channels) == (64, 128)
    convs = [m for m in net.proclf if isinstance(m, torch.nn.Conv3d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (128, 64, (3, 3, 3)), (64, 32, (3, 3, 3)), (32, 32, (3, 3, 3))]
    assert any(isinstance(m, torch.nn.Dropout3d) and m.p == 0.5 for m in net.proclf)
    assert (net.fc.in_features, net.fc.out_features) == (32, 2)
    # 0.53 M, not Table III's 0.347 M: Table I's own layers exceed it (model.py's docstring)
    assert parameter_count(net) == 534530
    assert net.proclf[1].weight.numel() == 221184  # Conv3d(128, 64)@3x3x3 alone: 64 % of 0.347 M


def test_odd_and_single_slice_volumes_pass():
    net = DeCoVNet().eval()
    with torch.no_grad():
        for t in (1, 3):
            assert net(torch.rand(1, 2, t, 64, 96)).shape == (1, 2)


def test_2dclfnet_table6():
    net = TwoDClfNet().eval().to("meta")
    x = torch.empty(1, 2, T_PAPER, 224, 336, device="meta")
    shapes = []
    f = net.features
    hooks = [f[3].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))),
             f[4].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))),
             f[5].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))),
             f[11].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))]
    with torch.no_grad():
        out = net(x)
    for h in hooks:
        h.remove()
    # per slice: stem 64x56x84, ResBlock 128x56x84, MaxPool2d 128x28x42, global max pool 128x1x1
    # chunks of 32 slices
    assert shapes[:4] == [(64, 56, 84), (128, 56, 84), (128, 28, 42), (128, 1, 1)]
    assert out.shape == (1, 2)
    # Table III: 0.600 M; one 3x3 convolution per ResBlock (model.py's docstring) gives 0.549 M
    assert parameter_count(net) == 548610


def test_2dclfnet_is_a_max_over_slices():
    net = TwoDClfNet().eval()
    x = torch.rand(1, 2, 3, 64, 96)
    with torch.no_grad():
        assert torch.allclose(net(x.flip(2)), net(x), atol=1e-5)


def test_fcclf_table7():
    net = DeCoVNetFCClf().eval()
    assert [m.out_features for m in net.fc if isinstance(m, torch.nn.Linear)] == [3072, 1536, 384, 2]
    # 43.1 M parameters in Table III
    assert parameter_count(net) == pytest.approx(43.1e6, rel=0.01)
    with torch.no_grad():
        assert net(torch.rand(1, 2, 4, 112, 168)).shape == (1, 2)
    meta = DeCoVNetFCClf().to("meta")
    pooled = []
    meta.pool.register_forward_hook(lambda m, i, o: pooled.append(tuple(o.shape[1:])))
    assert meta(torch.empty(1, 2, T_PAPER, 224, 336, device="meta")).shape == (1, 2)
    assert pooled == [(128, 4, 4, 6)]  # Table VII prints 64 x 4 x 4 x 6; 128 channels give its 43.1 M


def test_build_by_name():
    assert [type(build(n)).__name__ for n in ARCHITECTURES] == ["DeCoVNet", "TwoDClfNet", "DeCoVNetFCClf"]
    with pytest.raises(ValueError):
        build("resnet")
