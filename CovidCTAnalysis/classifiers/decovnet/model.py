"""DeCoVNet and the two baselines it is compared with (Wang et al., IEEE TMI 2020, seed 002).

``DeCoVNet`` follows Table I layer for layer (input 2 x T x 224 x 336: the CT and its lung mask):

=====================  ==============================================  ===================
stage                  layers                                          output
=====================  ==============================================  ===================
stem                   Conv3d(2, 16)@5x7x7 + BN + ReLU, max pool       16 x T x 56 x 84
ResBlocks              ResBlock(16, 64)@3x1x1&1x3x3                    64 x T x 56 x 84
                       MaxPool3d                                       64 x T/2 x 56 x 84
                       ResBlock(64, 128)@3x1x1&1x3x3                   128 x T/2 x 28 x 42
progressive classifier AdaptiveMaxPool3d                               128 x 16 x 28 x 42
                       Conv3d(128, 64)@3x3x3 + ReLU                    64 x 16 x 28 x 42
                       MaxPool3d                                       64 x 4 x 14 x 21
                       Conv3d(64, 32)@3x3x3 + ReLU, Dropout3d(0.5)
                       Conv3d(32, 32)@3x3x3 + ReLU                     32 x 4 x 14 x 21
                       global max pool, FullyConnected(32, 2)          2
=====================  ==============================================  ===================

Where Table I leaves a detail open, the choice that reproduces its output sizes:
- stem: the 5x7x7 convolution has in-plane stride 2 and the max pool (1x3x3) in-plane stride 2 (224x336 -> 56x84,
  every slice kept);
- ResBlock (§II-D, "a 3D convolution with a batchnorm layer and a shortcut connection containing a 3D convolution"):
  Conv3d@3x1x1 + BN + ReLU, Conv3d@1x3x3 + BN, a 1x1x1 Conv3d + BN shortcut, sum, ReLU; the second block halves the
  plane with stride (1, 2, 2) in its 1x3x3 convolution and its shortcut;
- the MaxPool3d between the blocks pools 2x1x1 (T -> T/2, rounding up so a volume of any length passes);
- the pool inside the classifier is 4x2x2 (16x28x42 -> 4x14x21); the 3x3x3 convolutions pad by 1.
The parameter count is 0.53 M, not the 0.347 M of Table III: the layer list of Table I cannot give 0.347 M (its first
classifier convolution alone has 0.22 M weights), so the table is followed.

Lesion localization (``infer.CAM_LAYERS``) runs the backbone and the head apart (``forward_head``): Grad-CAM on
the ResBlocks' output (the default), or CAM on the head's last feature maps (32 x 4 x 14 x 21) with the FC weights.

Baselines (Table III), selectable by ``build(name)``:
- ``TwoDClfNet`` (Table VI, Fig. 8): a 2-D network per slice (Conv2d(2, 64)@7x7 stem, ResBlock(64, 128)@3x3, max
  pool, ResBlock(128, 128)@3x3, two Conv2d(128, 128)@3x3 + ReLU, global max pool), max over slices, FC(128, 2).
  Its ResBlock is the 2-D counterpart of DeCoVNet's: §II-D describes a block as "a 3D convolution with a batchnorm
  layer and a shortcut connection containing a 3D convolution", and the 3-D block's 3x1x1 & 1x3x3 pair is a 3x3x3
  convolution factored into its slice and in-plane parts, of which a 2-D network keeps the in-plane 3x3 only. So one
  Conv2d@3x3 + BN, a 1x1 Conv2d + BN shortcut, sum, ReLU: 0.549 M parameters, the closest reading of Table VI to
  Table III's 0.600 M ("we kept the number of parameters ... almost the same", §III-B). Two 3x3 convolutions per
  block (a ResNet basic block) would give 0.84 M.
- ``DeCoVNetFCClf`` (Table VII, Fig. 9): DeCoVNet's stem and ResBlocks, then AdaptiveMaxPool3d, Dropout3d(0.5) and
  fully connected layers 3072, 1536, 384, 2. Table VII lists the pooled size as 64x4x4x6 = 6144 although the
  ResBlocks give 128 channels; we pool the 128 channels to 4x4x6 (12288 inputs), which is what the 43.1 M parameters
  of Table III require (12288 x 3072 alone is 37.7 M).
"""

from __future__ import annotations

import torch
from torch import nn

ARCHITECTURES = ("decovnet", "2dclfnet", "decovnet-fcclf")
#: Table I: in-plane input size (height, width) and the progressive classifier's adaptive pool size.
INPUT_HW = (224, 336)
PROCLF_POOL = (16, 28, 42)


class ResBlock3d(nn.Module):
    """ResBlock(cin, cout)@3x1x1&1x3x3 of Table I (see the module doc)."""

    def __init__(self, cin: int, cout: int, plane_stride: int = 1):
        super().__init__()
        s = (1, plane_stride, plane_stride)
        self.conv1 = nn.Conv3d(cin, cout, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = nn.Conv3d(cout, cout, (1, 3, 3), stride=s, padding=(0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.shortcut = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=s, bias=False), nn.BatchNorm3d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


def _backbone() -> nn.Sequential:
    """Stem and ResBlocks shared by DeCoVNet and DeCoVNet-FCClf (Tables I and VII)."""
    return nn.Sequential(
        nn.Conv3d(2, 16, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
        nn.BatchNorm3d(16),
        nn.ReLU(inplace=True),
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        ResBlock3d(16, 64),
        nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1), ceil_mode=True),
        ResBlock3d(64, 128, plane_stride=2),
    )


class DeCoVNet(nn.Module):
    """DeCoVNet of Table I. Input (B, 2, T, H, W): channel 0 the normalized CT, channel 1 the lung mask (0/1).

    Output: logits (B, 2), index 1 = COVID-19. Example::

        net = DeCoVNet().eval()
        logits = net(torch.zeros(1, 2, 8, 224, 336))   # -> shape (1, 2)
    """

    def __init__(self, dropout: float = 0.5):
        super().__init__()
        self.backbone = _backbone()
        self.proclf = nn.Sequential(
            nn.AdaptiveMaxPool3d(PROCLF_POOL),
            nn.Conv3d(128, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((4, 2, 2)),
            nn.Conv3d(64, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Dropout3d(dropout),
            nn.Conv3d(32, 32, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(32, 2)

    def forward_head(self, backbone_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The progressive classifier on the ResBlocks' output: (logits (B, 2), last feature maps)."""
        features = self.proclf(backbone_features)
        return self.fc(torch.amax(features, dim=(2, 3, 4))), features

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, 2), last feature maps (B, 32, 4, 14, 21)) - the inputs of CAM after the classifier."""
        return self.forward_head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]


class DeCoVNetFCClf(nn.Module):
    """DeCoVNet-FCClf of Table VII (baseline): DeCoVNet's backbone with a fully connected classifier."""

    def __init__(self, dropout: float = 0.5):
        super().__init__()
        self.backbone = _backbone()
        self.pool = nn.AdaptiveMaxPool3d((4, 4, 6))
        self.dropout = nn.Dropout3d(dropout)
        self.fc = nn.Sequential(
            nn.Linear(128 * 4 * 4 * 6, 3072), nn.ReLU(inplace=True),
            nn.Linear(3072, 1536), nn.ReLU(inplace=True),
            nn.Linear(1536, 384), nn.ReLU(inplace=True),
            nn.Linear(384, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.dropout(self.pool(self.backbone(x))), 1))


class ResBlock2d(nn.Module):
    """2-D ResBlock(cin, cout)@3x3 of Table VI: one 3x3 conv + BN, 1x1 conv + BN shortcut (module doc)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class TwoDClfNet(nn.Module):
    """2DClfNet of Table VI (baseline): per-slice 2-D features, max over slices, FC(128, 2).

    Same input as DeCoVNet, (B, 2, T, H, W); slices are processed in chunks of ``chunk`` to bound memory.
    """

    def __init__(self, chunk: int = 32):
        super().__init__()
        self.chunk = chunk
        self.features = nn.Sequential(
            nn.Conv2d(2, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            ResBlock2d(64, 128),
            nn.MaxPool2d(2),
            ResBlock2d(128, 128),
            nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveMaxPool2d(1),
        )
        self.fc = nn.Linear(128, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        slices = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        feats = torch.cat([self.features(s) for s in torch.split(slices, self.chunk)]).reshape(b, t, 128)
        return self.fc(feats.amax(dim=1))


def build(name: str = "decovnet") -> nn.Module:
    """A fresh network by name: 'decovnet' (Table I), '2dclfnet' (Table VI) or 'decovnet-fcclf' (Table VII)."""
    if name == "decovnet":
        return DeCoVNet()
    if name == "2dclfnet":
        return TwoDClfNet()
    if name == "decovnet-fcclf":
        return DeCoVNetFCClf()
    raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")


def fast_layout(net: nn.Module) -> nn.Module:
    """The network in channels-last 3-D memory layout (~1.6x faster 3-D convolutions on CPU) when it has 3-D
    convolutions; a 2-D network (2DClfNet, which reshapes its input into slices) is returned as it is."""
    if any(isinstance(m, nn.Conv3d) for m in net.modules()):
        return net.to(memory_format=torch.channels_last_3d)
    return net


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
