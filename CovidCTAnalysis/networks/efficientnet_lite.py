"""EfficientNet-Lite (Tan & Le 2019; the "Lite" variants of the TensorFlow TPU repository): the ImageNet-pretrained
2-D backbone of the project's slice classifiers.

Lite differs from EfficientNet-B0 as the mobile/edge variants were published: no squeeze-and-excitation, ReLU6
instead of swish, and the stem (32 channels) and head (1280 channels) kept fixed when the network is scaled. Stages of
Lite0 (kernel, stride, expansion, output channels, repeats): (3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2),
(3, 2, 6, 80, 3), (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1). Lite1 and Lite2 scale widths by 1.0 / 1.1
(rounded to multiples of 8) and repeats by 1.1 / 1.2 (rounded up), except the first and last stage.

Module names follow the published PyTorch state dicts (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...
``_conv_head``, ``_bn1``, ``_fc``) so that the ImageNet weights load strictly (``pretrained.py``). Every activation is
its own ``nn.ReLU6`` module and every residual sum happens in ``forward``, so hook-based explanation methods (Grad-CAM,
LRP) see each layer once. Padding is symmetric (k // 2) where the TensorFlow original pads "same" (asymmetric at
stride 2): a sub-pixel shift that fine-tuning absorbs.

For a 224 input the stage outputs are 112, 112, 56, 28, 14, 14, 7 and 7 pixels wide; ``stage_layers`` names the last
block of each stage (the Grad-CAM layers of multi-scale maps).
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: (kernel, stride, expansion, output channels, repeats) of Lite0's seven stages.
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
          (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
#: variant -> (width multiplier, depth multiplier, ImageNet input size)
VARIANTS = {"efficientnet-lite0": (1.0, 1.0, 224), "efficientnet-lite1": (1.0, 1.1, 240),
            "efficientnet-lite2": (1.1, 1.2, 260)}
STEM, HEAD = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to a multiple of ``divisor`` and never below 90 % of the scaled value."""
    scaled = channels * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * scaled else out


def stage_plan(variant: str) -> list[tuple[int, int, int, int, int]]:
    """The seven (kernel, stride, expansion, channels, repeats) stages of ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
    width, depth, _ = VARIANTS[variant]
    plan = []
    for i, (k, s, e, c, r) in enumerate(STAGES):
        repeats = r if i in (0, len(STAGES) - 1) else int(math.ceil(r * depth))
        plan.append((k, s, e, round_filters(c, width), repeats))
    return plan


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation: 1x1 expand, kxk depthwise, 1x1 project (+ identity)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
            self._act0 = nn.ReLU6()
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._act1 = nn.ReLU6()
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._act0(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = self._bn2(self._project_conv(self._act1(self._bn1(self._depthwise_conv(h)))))
        return h + x if self.residual else h


def fuse_block(block: MBConv) -> MBConv:
    """Fold an eval-mode MBConv's BatchNorms into the convolutions before them and make its ReLU6s act in place (each
    one's input is a convolution's output that nothing else reads), modifying ``block`` (see
    ``EfficientNetLite.fused_for_inference``)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    pairs = [("_expand_conv", "_bn0")] if hasattr(block, "_expand_conv") else []
    for conv, bn in pairs + [("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]:
        setattr(block, conv, fuse_conv_bn_eval(getattr(block, conv), getattr(block, bn)))
        setattr(block, bn, nn.Identity())
    for act in ("_act0", "_act1"):
        if hasattr(block, act):
            getattr(block, act).inplace = True
    return block


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0/1/2 with ``in_channels`` inputs and ``num_classes`` logits.

    >>> net = EfficientNetLite("efficientnet-lite0", in_channels=1, num_classes=1)
    >>> net(torch.zeros(2, 1, 224, 224)).shape
    torch.Size([2, 1])
    """

    def __init__(self, variant: str = "efficientnet-lite0", in_channels: int = 3, num_classes: int = 1000,
                 dropout: float = 0.2):
        super().__init__()
        self.variant = variant
        self._conv_stem = nn.Conv2d(in_channels, STEM, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._act_stem = nn.ReLU6()
        blocks, cin, ends = [], STEM, []
        for kernel, stride, expand, cout, repeats in stage_plan(variant):
            for j in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if j == 0 else 1, expand))
                cin = cout
            ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self.stage_ends = tuple(ends)
        self._conv_head = nn.Conv2d(cin, HEAD, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(HEAD, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._act_head = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD, num_classes)

    def stage_layers(self) -> tuple[str, ...]:
        """Module names of the last block of each of the seven stages (``_blocks.N``)."""
        return tuple(f"_blocks.{i}" for i in self.stage_ends)

    def fused_for_inference(self) -> "EfficientNetLite":
        """An eval-mode copy for inference only: every BatchNorm folded into the convolution before it
        (``torch.nn.utils.fusion.fuse_conv_bn_eval``; the BatchNorm becomes ``nn.Identity``), the ReLU6s in place
        and the weights in channels-last memory order. Same outputs (to float rounding) and the same module names,
        so hooks on ``_blocks.N`` see the same activations; about 1.6 times faster on a CPU
        (``scripts/benchmark_slice_resnet.py``).
        """
        import copy

        from torch.nn.utils.fusion import fuse_conv_bn_eval

        net = copy.deepcopy(self).eval()
        for owner, conv, bn in [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]:
            setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn)))
            setattr(owner, bn, nn.Identity())
        for block in net._blocks:
            fuse_block(block)
        net._act_stem.inplace = net._act_head.inplace = True  # as in the blocks: a convolution's output
        return net.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's feature map (N, 1280, H/32, W/32)."""
        h = self._act_stem(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        return self._act_head(self._bn1(self._conv_head(h)))

    def classify_features(self, features: torch.Tensor) -> torch.Tensor:
        """The logits of a head feature map (``features``): average pooling, dropout, the linear classifier."""
        return self._fc(self._dropout(self._avg_pooling(features).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify_features(self.features(x))
