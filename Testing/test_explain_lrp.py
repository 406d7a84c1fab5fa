"""LRP through captum (explain/lrp.py, explain/lrp_rules.py): relevance conservation, canonization that keeps the
network's outputs, and the project's backbones (EfficientNet-Lite with ReLU6, depthwise convolutions and residual
sums; MONAI's ResNet with shared in-place ReLUs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from CovidCTAnalysis.explain.lrp import LRPExplainer, Sum, canonize
from CovidCTAnalysis.explain.lrp_rules import AlphaBeta, ZBox


class Residual(nn.Module):
    """Bias-free: conv, BatchNorm (no shift), ReLU6, depthwise conv, a residual sum, ReLU."""

    def __init__(self, channels: int = 6):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ReLU6()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.out = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.out(self.depthwise(self.act(self.bn(self.conv(x)))) + x)


def bias_free_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1, bias=False), nn.ReLU(), Residual(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(6, 1, bias=False))
    with torch.no_grad():
        bn = net[2].bn
        bn.weight.uniform_(0.5, 1.5)
        bn.running_var.uniform_(0.5, 2.0)  # running_mean 0 and bias 0: the folded convolution stays bias-free
        net[-1].weight.abs_()  # a positive logit to explain
    return net.eval()


@pytest.mark.parametrize("rules", [dict(alpha=1.0, beta=0.0), dict(alpha=2.0, beta=1.0),
                                   dict(bounds=(0.0, 1.0), alpha=1.0, beta=0.0)],
                         ids=["alpha1beta0", "alpha2beta1", "zbox-first"])
def test_relevance_is_conserved_in_a_bias_free_network(rules):
    net = bias_free_net()
    x = torch.rand(3, 1, 20, 20)
    with torch.no_grad():
        logits = net(x)[:, 0]
    relevance = LRPExplainer(net, **rules)(x)
    assert relevance.shape == (3, 1, 20, 20)
    assert torch.all(logits > 0)
    total = relevance.sum(dim=(1, 2, 3))
    assert torch.allclose(total, logits, rtol=0.05, atol=0.0), (total, logits)


def test_canonized_network_computes_the_same_and_has_no_functional_sum():
    net = bias_free_net()
    gm = canonize(net, ZBox(0.0, 1.0), AlphaBeta())
    x = torch.rand(2, 1, 20, 20)
    with torch.no_grad():
        assert torch.allclose(gm(x), net(x), atol=1e-5)
    assert sum(isinstance(m, Sum) for m in gm.modules()) == 1
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gm.modules())  # folded into the convolution
    assert not any(getattr(m, "inplace", False) for m in gm.modules())


def test_explaining_twice_gives_the_same_map():
    net = bias_free_net()
    explain = LRPExplainer(net, bounds=(0.0, 1.0))
    x = torch.rand(1, 1, 20, 20)
    assert torch.equal(explain(x), explain(x))  # captum removes its rules after each call; they are re-attached


@pytest.mark.parametrize("backbone", ["efficientnet-lite0", "resnet18"])
def test_project_backbones_are_explained(backbone):
    from CovidCTAnalysis.classifiers.slice_resnet.model import build_model

    torch.manual_seed(1)
    net = build_model(backbone).eval()
    x = torch.randn(1, 1, 64, 64)
    explain = LRPExplainer(net, bounds=(-1.1, 1.6), alpha=2.0, beta=1.0)
    with torch.no_grad():
        assert torch.allclose(explain.net(x), net(x), atol=1e-4)
    relevance = explain(x)
    assert relevance.shape == (1, 1, 64, 64)
    assert torch.isfinite(relevance).all() and relevance.abs().sum() > 0


def test_alpha_beta_needs_alpha_minus_beta_one():
    with pytest.raises(ValueError):
        AlphaBeta(2.0, 0.0)
    with pytest.raises(ValueError):
        ZBox(1.0, 0.0)
