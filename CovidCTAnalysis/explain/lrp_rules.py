"""LRP propagation rules that captum lacks, for linear layers (convolutions, depthwise included, and dense layers).

LRP-0 / LRP-epsilon come from captum (``EpsilonRule`` in ``captum.attr._utils.lrp_rules``, where captum's tutorials
import it); the rules here need the positive and negative weights or the input bounds, which captum's
weight-manipulation hooks cannot express.

Notation (Montavon et al., "Layer-wise relevance propagation: an overview", 2019): a layer computes
z_j = sum_i x_i w_ij + b_j; relevance R_j of its outputs is redistributed to its inputs.

- ``AlphaBeta(alpha, beta)`` with alpha - beta = 1: positive and negative contributions (x_i w_ij)^+ and
  (x_i w_ij)^- are normalized separately, R_i = sum_j (alpha (x_i w_ij)^+ / z_j^+ - beta (x_i w_ij)^- / z_j^-) R_j,
  biases split the same way into z^+ and z^-. alpha = 1, beta = 0 is the Deep-Taylor rule of captum's
  ``Alpha1_Beta0_Rule``; alpha = 2, beta = 1 is what the LRP-CMP explanations of seed 000 (iCovid, §4.3) use.
- ``ZBox(low, high)``: the z^B rule for the first layer, whose inputs are bounded (low <= x_i <= high):
  R_i = sum_j (x_i w_ij - low w_ij^+ - high w_ij^-) / sum_i (...) R_j.

A rule is a function object ``rule(layer, x, r_out) -> r_in``; ``lrp.py`` runs it inside captum's backward pass.
Every rule conserves relevance (sum r_in = sum r_out) for a bias-free layer whose denominators are non-zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TINY = 1e-9


def linear_op(layer: nn.Module):
    """``op(x, weight) -> z`` without bias: the layer's linear map with any weight of its shape."""
    if isinstance(layer, nn.Linear):
        return F.linear
    conv = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}.get(type(layer))
    if conv is None:
        raise TypeError(f"no linear map known for {type(layer).__name__}")
    if layer.padding_mode != "zeros":
        raise TypeError(f"LRP rules need zero-padded convolutions, not padding_mode={layer.padding_mode!r}")
    return lambda x, w: conv(x, w, None, layer.stride, layer.padding, layer.dilation, layer.groups)


def _bias(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The layer's bias broadcast over z (zeros when it has none)."""
    if getattr(layer, "bias", None) is None:
        return torch.zeros_like(z)
    return layer.bias.view((1, -1) + (1,) * (z.dim() - 2)).expand_as(z)


def _stabilize(z: torch.Tensor) -> torch.Tensor:
    return z + torch.where(z >= 0, torch.full_like(z, TINY), torch.full_like(z, -TINY))


class AlphaBeta:
    """LRP-alpha-beta for any alpha >= 1, beta = alpha - 1 >= 0."""

    def __init__(self, alpha: float = 1.0, beta: float = 0.0):
        if beta < 0 or abs(alpha - beta - 1.0) > 1e-9:
            raise ValueError(f"alpha - beta must be 1 with beta >= 0, not alpha={alpha}, beta={beta}")
        self.alpha, self.beta = alpha, beta

    def __call__(self, layer: nn.Module, x: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
        return x * self.per_input(layer, x, r_out)

    def per_input(self, layer: nn.Module, x: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
        """R_i / x_i (any value where x_i = 0, where R_i is 0): the rule as ``lrp.py`` hands it to captum, which
        multiplies by the input again. Each part of the input ((x)^+ and (x)^-) receives the gradient of its own
        share, so R_i / x_i is that gradient where x_i has the part's sign - no division by the input is needed."""
        mixed = bool((x < 0).any())  # after a ReLU there is no (x)^- part and its convolutions are skipped
        grads = self._grads(layer, x, r_out, True, mixed)
        if self.beta:
            grads = [self.alpha * g - self.beta * h for g, h in zip(grads, self._grads(layer, x, r_out, False, mixed))]
        elif self.alpha != 1.0:
            grads = [self.alpha * g for g in grads]
        return torch.where(x > 0, grads[0], grads[1]) if mixed else grads[0]

    @staticmethod
    def _grads(layer: nn.Module, x: torch.Tensor, r_out: torch.Tensor, positive: bool, mixed: bool) -> list:
        """d/dx_i of sum_j (x w_ij)^+ / z_j^+ R_j (``positive``; else the negative parts) for the (x)^+ part and,
        when the input is ``mixed``, the (x)^- part: R_i = sum over parts of x_i^part * grad^part."""
        op = linear_op(layer)
        w_pos, w_neg = layer.weight.clamp(min=0), layer.weight.clamp(max=0)
        # (x w)^+ = x^+ w^+ + x^- w^-, (x w)^- = x^+ w^- + x^- w^+
        parts = [(x.clamp(min=0) if mixed else x, w_pos if positive else w_neg)]
        if mixed:
            parts.append((x.clamp(max=0), w_neg if positive else w_pos))
        with torch.enable_grad():
            leaves = [xi.detach().requires_grad_(True) for xi, _ in parts]
            z = sum(op(xi, w) for xi, (_, w) in zip(leaves, parts))
            b = _bias(layer, z).detach()
            denominator = z.detach() + (b.clamp(min=0) + TINY if positive else b.clamp(max=0) - TINY)
            return list(torch.autograd.grad(z, leaves, r_out / denominator))

    def __repr__(self) -> str:
        return f"AlphaBeta({self.alpha:g}, {self.beta:g})"


class ZBox:
    """z^B for a first layer whose inputs lie in [low, high]."""

    def __init__(self, low: float, high: float):
        if not low < high:
            raise ValueError(f"z^B needs low < high, not {low}, {high}")
        self.low, self.high = float(low), float(high)

    def __call__(self, layer: nn.Module, x: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
        op = linear_op(layer)
        w = layer.weight
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            lo = torch.full_like(x, self.low).requires_grad_(True)
            hi = torch.full_like(x, self.high).requires_grad_(True)
            z = op(xg, w) - op(lo, w.clamp(min=0)) - op(hi, w.clamp(max=0))
            s = r_out / _stabilize(z.detach())
            gx, gl, gh = torch.autograd.grad(z, (xg, lo, hi), s)
        return xg.detach() * gx + lo.detach() * gl + hi.detach() * gh

    def __repr__(self) -> str:
        return f"ZBox({self.low:g}, {self.high:g})"
