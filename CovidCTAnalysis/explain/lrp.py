"""Layer-wise relevance propagation (Bach et al. 2015) of any feed-forward CNN through ``captum.attr.LRP``.

captum propagates relevance layer by layer with one rule per leaf module and refuses modules it has no rule for. Our
networks need more than its defaults, so ``LRPExplainer`` first makes an explained copy of the network
(``canonize``), with torch.fx:

- every convolution followed by a BatchNorm is folded into one convolution (the usual canonization: BatchNorm is
  affine, and a rule for the folded layer sees the real weights); a BatchNorm left alone (after an activation) is
  propagated with LRP-0 as the affine map it is;
- every residual sum (``a + b`` in ``forward``) becomes a ``Sum`` module, which captum's LRP-epsilon rule splits in
  proportion to the summands (z-rule); a functional sum would hand each summand the whole relevance;
- a module called more than once (MONAI's ResNet reuses one ReLU per block) gets one copy per call, and in-place
  activations become out-of-place (captum's hooks cannot see in-place results);
- element-wise activations captum does not know (``nn.ReLU6`` of EfficientNet-Lite, LeakyReLU, ...) pass
  relevance through unchanged (captum's ``IdentityRule``), as captum does for ``nn.ReLU``; ``nn.Flatten`` moves it
  with the values (``Reshape``).

Rules (the composite recommended by Montavon et al. 2019 and used by seed 000, iCovid §4.3, with alpha = 2):
the first convolution z^B over the input bounds (``ZBox``), the other convolutions (depthwise too) alpha-beta
(``AlphaBeta``, default alpha = 1, beta = 0), dense layers LRP-epsilon, pooling layers captum's defaults.
Convolutions run their rule in a custom backward (``_RuleFunction``) that hands captum the relevance divided by the
input, so captum's "gradient x input" bookkeeping stays exact where one tensor feeds several layers.

The map is the relevance of the input summed over channels, (N, 1, *spatial), signed and unnormalized: for rules that
conserve, it sums to the explained logit. ``LRPExplainer.propagate`` starts instead from a relevance map on the
network's output (a network explained in parts, as seed 000's LRP-CMP explains its encoder branches below a gating).
"""

from __future__ import annotations

import copy
import operator
from collections import Counter
from typing import Sequence

import torch
from captum.attr import LRP
from captum.attr._utils.lrp_rules import EpsilonRule, IdentityRule
from torch import fx, nn

from .lrp_rules import AlphaBeta, ZBox

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Element-wise activations whose relevance passes through unchanged (captum handles ReLU, Tanh, Dropout itself).
PASS_THROUGH = (nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.Hardtanh, nn.SiLU, nn.GELU, nn.Identity, nn.Dropout2d,
                nn.Dropout3d)
RESHAPES = (nn.Flatten, nn.Unflatten)
SUMS = (operator.add, operator.iadd, torch.add)


class Sum(nn.Module):
    """``a + b`` as a module, so LRP splits relevance between the summands."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _RuleFunction(torch.autograd.Function):
    """Forward: the layer. Backward: the rule's input relevance divided by the input (captum multiplies it back;
    ``per_input`` of a rule that can give this quotient directly)."""

    @staticmethod
    def forward(ctx, x, holder):
        ctx.save_for_backward(x)
        ctx.holder = holder
        return holder.layer(x)

    @staticmethod
    def backward(ctx, r_out):
        (x,) = ctx.saved_tensors
        rule, layer = ctx.holder.rule, ctx.holder.layer
        if hasattr(rule, "per_input"):  # the rule knows R / x without dividing (AlphaBeta)
            return rule.per_input(layer, x, r_out), None
        r_in = rule(layer, x, r_out)
        safe = torch.where(x >= 0, x + 1e-12, x - 1e-12)
        return r_in / safe, None


class RuledConv(nn.Module):
    """A convolution explained by one of ``lrp_rules``; the convolution is held outside the module tree, so captum
    treats this as one leaf layer."""

    def __init__(self, layer: nn.Module, rule):
        super().__init__()
        self.__dict__["layer"] = layer  # not a child module: captum must not attach its own rule to it
        self.__dict__["lrp_rule"] = rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _RuleFunction.apply(x, _Holder(self.layer, self.lrp_rule))

    def extra_repr(self) -> str:
        return f"{self.layer}, {self.lrp_rule!r}"


class _Holder:
    def __init__(self, layer, rule):
        self.layer, self.rule = layer, rule


class PassRelevance(EpsilonRule):
    """captum rule of a ``RuledConv``: hands the output relevance to the layer's backward undivided."""

    def _create_backward_hook_output(self, outputs):
        def hook(grad):
            self.relevance_output[grad.device] = grad.data
            return grad

        return hook


class Reshape(PassRelevance):
    """captum rule of a module that only rearranges values (``nn.Flatten``): relevance moves with the values."""

    def _create_backward_hook_input(self, inputs):
        return lambda grad: grad


def _unshare_modules(gm: fx.GraphModule) -> None:
    """Give every call of a module called more than once its own copy."""
    calls = Counter(n.target for n in gm.graph.nodes if n.op == "call_module")
    seen: Counter = Counter()
    for node in gm.graph.nodes:
        if node.op == "call_module" and calls[node.target] > 1:
            seen[node.target] += 1
            if seen[node.target] > 1:
                name = f"{node.target.replace('.', '_')}_call{seen[node.target]}"
                gm.add_submodule(name, copy.deepcopy(gm.get_submodule(node.target)))
                node.target = name


def _modular_sums(gm: fx.GraphModule) -> None:
    """Replace tensor sums in the graph by ``Sum`` modules."""
    count = 0
    for node in list(gm.graph.nodes):
        is_sum = (node.op == "call_function" and node.target in SUMS) or \
                 (node.op == "call_method" and node.target in ("add", "add_", "__iadd__"))
        if not is_sum or len(node.args) != 2 or not all(isinstance(a, fx.Node) for a in node.args) or node.kwargs:
            continue
        name = f"lrp_sum{count}"
        count += 1
        gm.add_submodule(name, Sum())
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(name, tuple(node.args))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)


def canonize(network: nn.Module, first_rule, conv_rule) -> fx.GraphModule:
    """An explained copy of ``network`` (eval mode, same outputs): BatchNorm folded, sums as modules, one module per
    call, convolutions wrapped with their rule (the first one with ``first_rule`` when given)."""
    from torch.fx.experimental.optimization import fuse

    gm = fuse(copy.deepcopy(network).eval())  # symbolic trace, then conv + BatchNorm folding
    _unshare_modules(gm)
    _modular_sums(gm)
    first = True
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        module = gm.get_submodule(node.target)
        if isinstance(module, CONVS):
            gm.add_submodule(node.target, RuledConv(module, first_rule if first and first_rule else conv_rule))
            first = False
        if hasattr(module, "inplace"):
            module.inplace = False
    gm.graph.lint()
    gm.recompile()
    return gm


class LRPExplainer:
    """LRP of one network, canonized once and reused for every batch (captum.attr.LRP underneath).

    bounds: (low, high) of the input values, for the z^B rule at the first convolution (None: the conv rule there).
    alpha, beta: the alpha-beta rule of the other convolutions. dense_eps: epsilon of dense layers.
    """

    def __init__(self, network: nn.Module, *, bounds: Sequence[float] | None = None, alpha: float = 1.0,
                 beta: float = 0.0, dense_eps: float = 1e-6):
        self.net = canonize(network, ZBox(*bounds) if bounds is not None else None, AlphaBeta(alpha, beta))
        self.dense_eps = dense_eps

    def _attach_rules(self) -> None:
        """captum's rules of the leaf modules (captum removes them after every attribution)."""
        for module in self.net.modules():
            if isinstance(module, RuledConv):
                module.rule = PassRelevance()
            elif isinstance(module, nn.Linear):
                module.rule = EpsilonRule(self.dense_eps)
            elif isinstance(module, PASS_THROUGH):
                module.rule = IdentityRule()
            elif isinstance(module, RESHAPES):
                module.rule = Reshape()
            elif isinstance(module, (Sum, nn.modules.batchnorm._BatchNorm)):
                module.rule = EpsilonRule(1e-9)

    def __call__(self, x: torch.Tensor, target: int = 0) -> torch.Tensor:
        """Input relevance of logit ``target`` summed over channels: (N, 1, *spatial)."""
        self._attach_rules()
        with torch.enable_grad():
            relevance = LRP(self.net).attribute(x.detach().clone().requires_grad_(True), target=target)
        return relevance.detach().sum(dim=1, keepdim=True)


    def propagate(self, x: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
        """Input relevance (N, 1, *spatial) given the relevance of the network's output (``relevance``, the output's
        shape): the output becomes one score per sample, sum(c * output) with c = relevance / output, which LRP-0
        hands back to the output as exactly ``relevance``; from there the network's rules apply."""
        with torch.no_grad():
            out = self.net(x)
        seed = _Seed(relevance / torch.where(out >= 0, out + 1e-12, out - 1e-12))
        seeded = nn.Sequential(self.net, seed)
        self._attach_rules()
        seed.rule = EpsilonRule(1e-12)
        with torch.enable_grad():
            r = LRP(seeded).attribute(x.detach().clone().requires_grad_(True), target=0)
        return r.detach().sum(dim=1, keepdim=True)


class _Seed(nn.Module):
    """(N, ...) -> (N, 1): sum(c * x) per sample, a fixed linear layer."""

    def __init__(self, c: torch.Tensor):
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.c).flatten(1).sum(1, keepdim=True)


def lrp(network: nn.Module, x: torch.Tensor, target: int = 0, **rules) -> torch.Tensor:
    """LRP maps (N, 1, *spatial) of logit ``target`` for a batch ``x``; ``rules`` as ``LRPExplainer``."""
    return LRPExplainer(network, **rules)(x, target)
