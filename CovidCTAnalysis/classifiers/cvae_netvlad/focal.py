"""The focal loss of iCovid (seed 000, Eq. 7; Lin et al.): FL = -lambda_t (1 - y_hat_t)^gamma log(y_hat_t), with
lambda 0.25 for COVID-19 negatives and 0.35 for positives and gamma 5 (§5.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LAMBDA = (0.25, 0.35)  # class 0 (negative), class 1 (COVID-19)
GAMMA = 5.0


def focal_loss(logits: torch.Tensor, y: torch.Tensor, lam=LAMBDA, gamma: float = GAMMA) -> torch.Tensor:
    """Mean focal loss of two-class ``logits`` (N, 2) against labels ``y`` (N,) in {0, 1}."""
    y = y.long()
    log_p = F.log_softmax(logits, dim=1).gather(1, y[:, None])[:, 0]
    weight = torch.as_tensor(lam, dtype=logits.dtype, device=logits.device)[y]
    return (-weight * (1 - log_p.exp()).pow(gamma) * log_p).mean()
