"""NetVLAD (Arandjelović et al. 2016), the aggregation of slice descriptors in iCovid (seed 000, §4.2.2, M = 64).

V_k = sum_n a_k(x_n) (x_n - c_k), a = softmax over clusters of a linear map of x_n (the paper's soft assignment),
each V_k L2-normalised (intra-normalisation), then the whole vector. Descriptors are L2-normalised first, as in
the original.

``frozen``: the explanation pass of §4.3 ("we approximate the feature aggregation step of NetVLAD by a linear matrix
multiplication by freezing the clustering matrix"): the assignments and the three normalisers are held constant
(detached), so the layer is linear in its input and Gradient x Input through it is LRP-0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-12


def _normalize(x: torch.Tensor, dim: int, frozen: bool) -> torch.Tensor:
    norm = x.norm(dim=dim, keepdim=True).clamp_min(EPS)
    return x / (norm.detach() if frozen else norm)


class NetVLAD(nn.Module):
    """(B, N, D) descriptors (N per set, zero rows masked out by ``mask`` (B, N)) -> (B, K * D)."""

    def __init__(self, clusters: int = 64, dim: int = 512):
        super().__init__()
        self.clusters, self.dim = clusters, dim
        self.assign = nn.Linear(dim, clusters)
        self.centroids = nn.Parameter(torch.randn(clusters, dim) * 0.1)
        self.frozen = False

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = _normalize(x, -1, self.frozen)
        a = torch.softmax(self.assign(x), dim=-1)  # (B, N, K)
        if self.frozen:
            a = a.detach()
        if mask is not None:
            a = a * mask[..., None]
        # sum_n a_nk x_n - (sum_n a_nk) c_k
        v = torch.einsum("bnk,bnd->bkd", a, x) - a.sum(dim=1)[..., None] * self.centroids
        v = _normalize(v, -1, self.frozen)
        return _normalize(v.flatten(1), -1, self.frozen)


def spp(x: torch.Tensor, levels=(5, 3, 2)) -> torch.Tensor:
    """Spatial pyramid max pooling (He et al. 2015; §5.1: levels 5 x 5, 3 x 3, 2 x 2): (N, C, H, W) -> (N, C * 38)."""
    return torch.cat([F.adaptive_max_pool2d(x, n).flatten(1) for n in levels], dim=1)
