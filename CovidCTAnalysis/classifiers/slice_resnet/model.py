"""The slice classifier of Gozes et al. (seed 003, §2.2): a 2-D ResNet on a 224 x 224 lung ROI, one logit for
COVID-19 (binary cross-entropy).

The network is MONAI's ResNet (``monai.networks.nets.ResNet``) with the ImageNet-style stem (7 x 7 convolution with
stride 2 and max pooling), so for a 224 input ``layer2`` is 28 x 28 and ``layer3`` 14 x 14: the two Grad-CAM
resolutions of §2.3. ``layer4`` (7 x 7) feeds global average pooling and the single-logit head; for ResNet-50 its
output has the 2048 channels of the §3.3 feature space (ResNet-18: 512).

The paper uses ResNet-50 pre-trained on ImageNet. No ImageNet weights exist here and training runs on 2 shared CPU
cores; which depth ships, and why, is stated in the model card (Resources/Models/cards/slice-resnet.md).
"""

from __future__ import annotations

from typing import Any

#: Layers whose Grad-CAM maps are fused (§2.3): 28 x 28 and 14 x 14 for a 224 input.
GRADCAM_LAYERS = ("layer2", "layer3")
#: The last convolutional stage, whose output is the §3.3 feature map.
FEATURE_LAYER = "layer4"
DEPTHS = (18, 34, 50)


def build_model(depth: int = 18):
    """A fresh single-logit 2-D MONAI ResNet of the given depth for 1-channel (grayscale) 224 x 224 input."""
    from monai.networks.nets import resnet18, resnet34, resnet50

    factories = {18: resnet18, 34: resnet34, 50: resnet50}
    if depth not in factories:
        raise ValueError(f"depth must be one of {DEPTHS}, not {depth}")
    return factories[depth](spatial_dims=2, n_input_channels=1, num_classes=1, conv1_t_size=7, conv1_t_stride=2)


def forward_stages(net, x) -> dict[str, Any]:
    """Run the backbone stage by stage: {'layer2', 'layer3', 'layer4', 'logit'} (pre-training needs the maps)."""
    h = net.maxpool(net.act(net.bn1(net.conv1(x))))
    h = net.layer1(h)
    out = {"layer2": net.layer2(h)}
    out["layer3"] = net.layer3(out["layer2"])
    out["layer4"] = net.layer4(out["layer3"])
    out["logit"] = net.fc(net.avgpool(out["layer4"]).flatten(1))
    return out


def depth_of(state_dict: dict) -> int:
    """The ResNet depth a state dict was saved from (counted blocks; 3-conv blocks = bottleneck)."""
    blocks = {k.split(".")[0] + "." + k.split(".")[1] for k in state_dict if k.startswith("layer")}
    bottleneck = any(k.endswith("conv3.weight") for k in state_dict)
    n = len(blocks)
    if bottleneck and n == 16:
        return 50
    if n == 16:
        return 34
    if n == 8:
        return 18
    raise ValueError(f"state dict is not a ResNet-18/34/50 ({n} blocks)")


def model_from_state_dict(state_dict: dict, device: Any = "cpu"):
    """Build the matching network, load float32 weights (shipped as fp16), eval mode, on ``device``."""
    import torch

    net = build_model(depth_of(state_dict))
    net.load_state_dict({k: v.float() if torch.is_floating_point(v) else v for k, v in state_dict.items()})
    return net.to(device).eval()
