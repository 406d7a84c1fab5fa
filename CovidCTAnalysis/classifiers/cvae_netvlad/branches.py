"""The two-branch encoder of iCovid (seed 000, §4.2.1, Fig. 3): a global branch on the CT slice, a side branch on the
binarised lesion mask, and the gating F = ReLU(F_gcnn ⊙ F_scnn) (Eq. 2).

§4.2.1 builds both branches as three convolutions from scratch: 16 5 x 5 (ReLU, max pooling), 32 3 x 3 (leaky ReLU,
max pooling), 64 3 x 3 (leaky ReLU). The side branch here is exactly that, on the lesion mask at a quarter of the
frame (``inputs.SIDE``). The global branch departs from the paper (model card, "Departures"): the stem and the first
five stages of the ImageNet EfficientNet-Lite0 (frozen; stride 16, 112 channels) stand in for its first two
convolutions, then the paper's third convolution (64 3 x 3, leaky ReLU). On a few hundred COVID-CT figures a
from-scratch encoder learns the figures' framing rather than the disease (the project's slice classifiers' experience;
the paper's from-scratch branch was not trained for this package, model card), and a frozen trunk lets the features
of every training figure be computed once (``FrozenTrunk``).
"""

from __future__ import annotations

import torch
from torch import nn

#: Channels of the encoder's last convolution (§4.2.1) and so of the gated map F.
CHANNELS = 64
#: Lite0 stages kept in the frozen trunk (stride 16, 112 channels).
TRUNK_STAGES = 5
TRUNK_CHANNELS = 112
SLOPE = 0.01  # torch's leaky ReLU default; the paper gives none


class FrozenTrunk(nn.Module):
    """Stem and the first ``TRUNK_STAGES`` stages of EfficientNet-Lite0 for a 1-channel input (eval mode always)."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        from ...networks.efficientnet_lite import EfficientNetLite

        lite = EfficientNetLite("efficientnet-lite0", in_channels=1, num_classes=1)
        if pretrained:
            from ...networks.pretrained import load_pretrained, wheel_weights

            load_pretrained(lite, "efficientnet", wheel_weights("efficientnet-lite0"), in_channels=1)
        last = lite.stage_ends[TRUNK_STAGES - 1]
        #: Index in ``blocks`` of the last stage's first block (what ``--tune-last-stage`` fine-tunes).
        self.last_stage_start = lite.stage_ends[TRUNK_STAGES - 2] + 1
        self.stem = nn.Sequential(lite._conv_stem, lite._bn0, lite._act_stem)
        self.blocks = nn.Sequential(*lite._blocks[:last + 1])
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def below_last_stage(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk without its last stage (stride 16, 80 channels)."""
        return self.blocks[:self.last_stage_start](self.stem(x))

    def last_stage(self) -> nn.Sequential:
        """The last stage's blocks (the modules themselves, not copies)."""
        return self.blocks[self.last_stage_start:]


class GlobalHead(nn.Module):
    """The global branch's trainable part: the paper's third convolution (64 3 x 3, leaky ReLU) on the trunk."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(TRUNK_CHANNELS, CHANNELS, 3, padding=1)
        self.act = nn.LeakyReLU(SLOPE)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(features))


class SideBranch(nn.Module):
    """§4.2.1's branch on the lesion mask: 16 5 x 5 + ReLU + max pool, 32 3 x 3 + leaky ReLU + max pool, 64 3 x 3 +
    leaky ReLU; (N, 1, SIDE, SIDE) -> (N, 64, SIDE / 4, SIDE / 4)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.LeakyReLU(SLOPE), nn.MaxPool2d(2),
            nn.Conv2d(32, CHANNELS, 3, padding=1), nn.LeakyReLU(SLOPE))

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.layers(mask)


class Encoder(nn.Module):
    """Global head (+ side branch and gating when ``side``) on cached trunk features: the encoder the CVAE trains
    and the classifier inherits (§4.2.2). ``side=False`` is the ablation "CVAE without side information"."""

    def __init__(self, side: bool = True):
        super().__init__()
        self.global_head = GlobalHead()
        self.side = SideBranch() if side else None

    def forward(self, features: torch.Tensor, lesions: torch.Tensor) -> torch.Tensor:
        f_g = self.global_head(features)
        if self.side is None:
            return f_g
        return torch.relu(f_g * self.side(lesions))  # Eq. 2
