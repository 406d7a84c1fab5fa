"""The classification network of iCovid (seed 000, §4.2.2, Fig. 4): the CVAE's encoder (both branches and the
gating), spatial pyramid pooling (5, 3, 2) in place of the third max pooling, a 512-neuron layer, NetVLAD over the
slices of a case (M = 64 clusters) and a linear layer with two neurons (§5.1).

A case is a set of slices: one slice for a 2-D image (training on COVID-CT figures), the lung slices every 3 mm for
a volume (``infer``). ``CVAENetVLAD`` runs on cached trunk features; ``FullNetwork`` puts the frozen trunk in front
for inference and explanation.
"""

from __future__ import annotations

import torch
from torch import nn

from .branches import CHANNELS, Encoder, FrozenTrunk
from .netvlad import NetVLAD, spp

SPP_LEVELS = (5, 3, 2)
HIDDEN = 512
CLUSTERS = 64


class CVAENetVLAD(nn.Module):
    """Encoder -> SPP -> FC 512 + ReLU -> NetVLAD -> FC 2, on trunk features."""

    def __init__(self, side: bool = True):
        super().__init__()
        self.encoder = Encoder(side)
        self.fc = nn.Linear(CHANNELS * sum(n * n for n in SPP_LEVELS), HIDDEN)
        self.act = nn.ReLU()
        self.netvlad = NetVLAD(CLUSTERS, HIDDEN)
        self.head = nn.Linear(CLUSTERS * HIDDEN, 2)

    def descriptors(self, gated: torch.Tensor) -> torch.Tensor:
        """Slice descriptors (S, 512) of gated maps (S, 64, h, w)."""
        return self.act(self.fc(spp(gated, SPP_LEVELS)))

    def aggregate(self, descriptors: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """Logits (B, 2) of consecutive sets of ``sizes`` descriptors."""
        sets = torch.split(descriptors, sizes)
        padded = nn.utils.rnn.pad_sequence(sets, batch_first=True)
        mask = nn.utils.rnn.pad_sequence([torch.ones(len(s), device=descriptors.device) for s in sets],
                                         batch_first=True)
        return self.head(self.netvlad(padded, mask))

    def forward(self, features: torch.Tensor, lesions: torch.Tensor, sizes: list[int] | None = None):
        """Logits (B, 2); ``sizes``: slices per case (default: every slice its own case)."""
        d = self.descriptors(self.encoder(features, lesions))
        return self.aggregate(d, sizes or [1] * len(d))


def from_cvae(cvae, side: bool = True) -> CVAENetVLAD:
    """A classifier whose encoder starts from a trained CVAE's (§4.2.2)."""
    net = CVAENetVLAD(side)
    net.encoder.load_state_dict(cvae.encoder.state_dict())
    return net


class FullNetwork(nn.Module):
    """The frozen trunk and the classifier: unit-standardised slices (S, 1, SIZE, SIZE) and lesion masks
    (S, 1, SIDE, SIDE) of one case -> logits (1, 2)."""

    def __init__(self, classifier: CVAENetVLAD, trunk: FrozenTrunk | None = None):
        super().__init__()
        self.trunk = trunk if trunk is not None else FrozenTrunk(pretrained=False)
        self.classifier = classifier

    def forward(self, x: torch.Tensor, lesions: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.trunk(x), lesions, [len(x)])
