"""LRP-CMP, the explanation of iCovid (seed 000, §4.3): relevance of the COVID-19 decision on the CT slices (and on
the lesion masks) of one case, composed as the paper does:

- classifier stage: LRP-0 on the dense layers (Eq. 8) and Gradient x Input through NetVLAD with the clustering frozen
  (``NetVLAD.frozen``: assignments and normalisers held constant, so the aggregation is a linear map), relevance
  following the maximum path through the spatial pyramid pooling; on this piecewise-linear path LRP-0 and
  Gradient x Input are the same computation (captum's ``InputXGradient`` on the head);
- gating (Eq. 2): Gradient x Input hands each factor of a product the whole product; the two branches get half each
  (the symmetric split of a product of two, which keeps the total);
- feature extraction: LRP-alpha-beta with alpha 2, beta 1 (Eq. 9) on every convolution of both branches, z^B at the
  input layer (bounds of the standardised slice, resp. [0, 1] for the lesion mask), through
  ``explain.lrp.LRPExplainer.propagate`` (captum's LRP with the project's rules; BatchNorm folded);
- Gaussian smoothing of the positive relevance (Fig. 8, ``explain.heatmap.relevance_heatmap``).

The explained score is the log-odds of COVID-19, logit_1 - logit_0 (the two-neuron layer's decision; with a
softmax only the difference matters). The lesion-mask relevance (SIDE grid) is spread evenly onto the frame's
pixels and added to the slice's, so the map holds the relevance of both inputs (Fig. 8 shows both). On a volume only
the slices with the most positive relevance are explained down to the pixels (``refine``, CPU time; ``infer``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...explain.lrp import LRPExplainer
from . import inputs
from .classifier import FullNetwork

ALPHA, BETA = 2.0, 1.0  # §4.3


class GlobalBranch(nn.Module):
    """Frozen trunk + the global head: standardised slices -> F_gcnn."""

    def __init__(self, net: FullNetwork):
        super().__init__()
        self.trunk, self.head = net.trunk, net.classifier.encoder.global_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


class _LogOdds(nn.Module):
    """Gated maps (S, 64, h, w) of one case -> its log-odds (1, 1), NetVLAD frozen."""

    def __init__(self, net: FullNetwork):
        super().__init__()
        self.classifier = net.classifier

    def forward(self, gated: torch.Tensor) -> torch.Tensor:
        logits = self.classifier.aggregate(self.classifier.descriptors(gated), [len(gated)])
        return (logits[:, 1] - logits[:, 0])[:, None]


@dataclass
class Explanation:
    """LRP-CMP of one case: ``maps`` (S, SIZE, SIZE) input relevance on the frame (both inputs), ``refined`` the
    slices explained down to the pixels (the others carry their gated feature map's relevance spread over its
    cells), ``slice_relevance`` (S,) the relevance of each slice's gated map, and the explained ``log_odds``."""

    maps: torch.Tensor
    refined: list
    slice_relevance: torch.Tensor
    log_odds: float


def _spread(relevance: torch.Tensor, size: int) -> torch.Tensor:
    """(S, h, w) relevance -> (S, size, size), each cell's relevance shared evenly by its pixels (the sum kept)."""
    scale = size // relevance.shape[-1]
    return torch.repeat_interleave(torch.repeat_interleave(relevance, scale, -1), scale, -2) / scale ** 2


class LRPCMP:
    """LRP-CMP of a ``FullNetwork`` (canonized once; reused for every case)."""

    def __init__(self, net: FullNetwork, alpha: float = ALPHA, beta: float = BETA):
        import copy

        self.net = copy.deepcopy(net).eval()
        self.net.classifier.netvlad.frozen = True
        self.global_branch = LRPExplainer(GlobalBranch(self.net), bounds=inputs.input_bounds(), alpha=alpha,
                                          beta=beta)
        side = self.net.classifier.encoder.side
        self.side_branch = LRPExplainer(side, bounds=(0.0, 1.0), alpha=alpha, beta=beta) if side is not None \
            else None

    def __call__(self, x: torch.Tensor, lesions: torch.Tensor, refine: int | None = None) -> Explanation:
        """x (S, 1, SIZE, SIZE) standardised slices and lesions (S, 1, SIDE, SIDE) of one case; ``refine``: explain
        at most this many slices down to the pixels, those with the most positive relevance (None: all)."""
        from captum.attr import InputXGradient

        encoder = self.net.classifier.encoder
        with torch.no_grad():
            f_g = GlobalBranch(self.net)(x)
            f_s = encoder.side(lesions) if encoder.side is not None else None
            gated = torch.relu(f_g * f_s) if f_s is not None else f_g
        head = _LogOdds(self.net)
        with torch.no_grad():
            log_odds = float(head(gated))
        with torch.enable_grad():
            r_gated = InputXGradient(head).attribute(gated.clone().requires_grad_(True), target=0).detach()
        per_slice = r_gated.sum(dim=(1, 2, 3))
        maps = _spread(r_gated.sum(dim=1), inputs.SIZE)
        order = torch.argsort(r_gated.clamp(min=0).sum(dim=(1, 2, 3)), descending=True)
        chosen = order[:refine] if refine is not None else order
        chosen = chosen.sort().values
        r = r_gated[chosen]
        if f_s is None:
            maps[chosen] = self.global_branch.propagate(x[chosen], r)[:, 0]
        else:
            half = 0.5 * r
            maps[chosen] = self.global_branch.propagate(x[chosen], half)[:, 0] + \
                _spread(self.side_branch.propagate(lesions[chosen], half)[:, 0], inputs.SIZE)
        return Explanation(maps, [int(i) for i in chosen], per_slice, log_odds)
