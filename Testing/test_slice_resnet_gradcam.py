"""Multi-scale Grad-CAM (§2.3): shapes, [0, 1] range, fusion by multiplication, hooks cleaned up."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from CovidCTAnalysis.classifiers.slice_resnet.model import BACKBONES, backbone_of, build_model, gradcam_layers
from CovidCTAnalysis.explain import multiscale_gradcam, normalize01, overlay_rgb
from CovidCTAnalysis.explain.gradcam import gradcam_map


@pytest.fixture(scope="module", params=["efficientnet-lite0", "resnet18"])
def net(request):
    torch.manual_seed(0)
    return build_model(request.param).eval()


def test_gradcam_layers_have_the_paper_resolutions(net):
    sizes = {}
    modules = dict(net.named_modules())
    hooks = [modules[name].register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, o.shape[-1]))
             for name in gradcam_layers(net)]
    with torch.no_grad():
        assert tuple(net(torch.zeros(1, 1, 224, 224)).shape) == (1, 1)
    for h in hooks:
        h.remove()
    assert [sizes[name] for name in gradcam_layers(net)] == [28, 14]


@pytest.mark.parametrize("backbone", BACKBONES)
def test_backbone_is_recognised_from_its_state_dict(backbone):
    assert backbone_of(build_model(backbone).state_dict()) == backbone


def test_fused_map_is_the_product_of_normalized_maps(net):
    torch.manual_seed(1)
    x = torch.randn(2, 1, 224, 224)
    layers = gradcam_layers(net)
    r = multiscale_gradcam(net, x, layers)
    assert tuple(r.fused.shape) == (2, 1, 224, 224)
    for name in layers:
        m = r.maps[name]
        assert tuple(m.shape) == (2, 1, 224, 224)
        assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
        assert float(m.amax(dim=(1, 2, 3)).min()) == pytest.approx(1.0)  # each map normalized per image
    assert torch.allclose(r.fused, r.maps[layers[0]] * r.maps[layers[1]])
    assert float(r.fused.min()) >= 0.0 and float(r.fused.max()) <= 1.0
    with torch.no_grad():
        assert torch.allclose(r.logits, net(x), atol=1e-5)
    modules = dict(net.named_modules())
    assert not any(modules[n]._forward_hooks or modules[n]._backward_hooks for n in layers)  # no hooks left behind


def test_gradcam_weights_by_mean_gradient():
    a = torch.zeros(1, 2, 2, 2)
    a[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    a[0, 1] = torch.tensor([[4.0, 0.0], [0.0, 0.0]])
    g = torch.zeros(1, 2, 2, 2)
    g[0, 0] = 0.5
    g[0, 1] = -1.0
    cam = gradcam_map(a, g)  # relu(0.5 * A0 - 1.0 * A1)
    assert torch.allclose(cam[0, 0], torch.tensor([[0.0, 1.0], [1.5, 2.0]]))


def test_normalize01_per_map_and_constant_maps():
    m = torch.tensor([[[[1.0, 3.0], [5.0, 9.0]]], [[[2.0, 2.0], [2.0, 2.0]]]])
    n = normalize01(m)
    assert torch.allclose(n[0, 0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.all(n[1] == 0)


def test_overlay_keeps_the_image_where_there_is_no_heat():
    gray = np.full((4, 4), 0.5, np.float32)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    rgb = overlay_rgb(gray, heat)
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8
    assert np.all(rgb[1:, :] == 128)
    assert rgb[0, 0, 0] > rgb[0, 0, 2]  # hot = red


def test_selected_samples_get_the_maps_of_a_full_pass_and_the_others_none(net):
    torch.manual_seed(2)
    x = torch.randn(3, 1, 224, 224)
    layers = gradcam_layers(net)
    full = multiscale_gradcam(net, x, layers)
    picked = multiscale_gradcam(net, x, layers, select=lambda logits: torch.tensor([True, False, True]))
    assert torch.allclose(picked.fused[[0, 2]], full.fused[[0, 2]], atol=1e-5)
    assert torch.all(picked.fused[1] == 0)
    assert torch.allclose(picked.logits, full.logits)
    none = multiscale_gradcam(net, x, layers, select=lambda logits: torch.zeros(3, dtype=torch.bool))
    assert torch.all(none.fused == 0)


def test_gradcam_leaves_no_weight_gradients_and_restores_gradient_flags(net):
    net.zero_grad(set_to_none=True)
    frozen = next(net.parameters())
    frozen.requires_grad_(False)
    try:
        multiscale_gradcam(net, torch.randn(1, 1, 224, 224), gradcam_layers(net))
        assert all(p.grad is None for p in net.parameters())
        flags = [p.requires_grad for p in net.parameters()]
        assert flags[0] is False and all(flags[1:])
    finally:
        frozen.requires_grad_(True)


def test_fused_inference_network_gives_the_same_logits_and_maps():
    torch.manual_seed(3)
    net = build_model("efficientnet-lite0").eval()
    for m in net.modules():  # non-trivial BatchNorm statistics, so that folding them is tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    fast = net.fused_for_inference()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    x = torch.randn(2, 1, 224, 224)
    with torch.no_grad():
        assert torch.allclose(fast(x), net(x), atol=1e-4, rtol=1e-4)
    layers = gradcam_layers(net)
    a, b = multiscale_gradcam(net, x, layers), multiscale_gradcam(fast, x, layers)
    assert torch.allclose(a.fused, b.fused, atol=1e-3)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the original is untouched
