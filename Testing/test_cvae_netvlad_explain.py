"""LRP-CMP of iCovid (seed 000, §4.3): relevance conservation where the rules conserve, and the model-randomisation
sanity check (Adebayo et al. 2018): the map must change when the trained layers are re-randomised."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from CovidCTAnalysis.classifiers.cvae_netvlad import inputs
from CovidCTAnalysis.classifiers.cvae_netvlad.branches import FrozenTrunk
from CovidCTAnalysis.classifiers.cvae_netvlad.classifier import CVAENetVLAD, FullNetwork
from CovidCTAnalysis.classifiers.cvae_netvlad.explain import LRPCMP, GlobalBranch, _LogOdds


def _bias_free_network(seed: int = 0) -> FullNetwork:
    torch.manual_seed(seed)
    net = FullNetwork(CVAENetVLAD(side=True), FrozenTrunk(pretrained=False)).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(getattr(m, "bias", None), torch.nn.Parameter):
                m.bias.zero_()
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.zero_()
                m.running_mean.zero_()
        net.classifier.netvlad.centroids.zero_()
    return net


def _case(n: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, inputs.SIZE, inputs.SIZE, generator=g)
    lesions = (torch.rand(n, 1, inputs.SIDE, inputs.SIDE, generator=g) > 0.6).float()
    return x, lesions


@pytest.fixture(scope="module")
def bias_free():
    torch.set_num_threads(1)
    return _bias_free_network()


def test_head_relevance_sums_to_the_log_odds(bias_free):
    """LRP-0 / Gradient x Input through the dense layers, SPP and the frozen NetVLAD conserves exactly."""
    from captum.attr import InputXGradient

    x, lesions = _case()
    explainer = LRPCMP(bias_free, alpha=1.0, beta=0.0)
    net = explainer.net
    with torch.no_grad():
        gated = net.classifier.encoder(net.trunk(x), lesions)
    head = _LogOdds(net)
    r = InputXGradient(head).attribute(gated.clone().requires_grad_(True), target=0)
    assert float(r.detach().sum()) == pytest.approx(float(head(gated).detach()), rel=1e-4)


def test_conv_relevance_is_conserved_with_conserving_rules(bias_free):
    """The convolutional global branch (trunk + head, BatchNorm folded) conserves the relevance it is given within
    5 % under alpha = 1, beta = 0 (alpha-beta (2, 1) and z^B conserve only where a neuron has both positive and
    negative contributions; the model card gives its ratio on real slices)."""
    x, lesions = _case()
    explainer = LRPCMP(bias_free, alpha=1.0, beta=0.0)
    with torch.no_grad():
        out = GlobalBranch(explainer.net)(x)
    relevance = out.clamp(min=0)  # positive relevance on the active outputs, as the gating passes it
    r = explainer.global_branch.propagate(x, relevance)
    assert float(r.sum()) == pytest.approx(float(relevance.sum()), rel=0.05)


def test_lrp_cmp_map_and_its_slice_relevance(bias_free):
    x, lesions = _case(3)
    e = LRPCMP(bias_free)(x, lesions, refine=2)
    assert e.maps.shape == (3, inputs.SIZE, inputs.SIZE) and len(e.refined) == 2
    assert e.slice_relevance.shape == (3,)
    # the gated map's relevance is the head's: it sums to the log-odds
    assert float(e.slice_relevance.sum()) == pytest.approx(e.log_odds, rel=1e-4)
    # unrefined slices carry exactly their gated map's relevance
    other = [i for i in range(3) if i not in e.refined][0]
    assert float(e.maps[other].sum()) == pytest.approx(float(e.slice_relevance[other]), rel=1e-4, abs=1e-9)


def test_map_changes_when_the_trained_layers_are_randomised():
    torch.set_num_threads(1)
    net = _bias_free_network(0)
    x, lesions = _case(1, seed=3)
    before = LRPCMP(net)(x, lesions).maps.numpy().ravel()
    torch.manual_seed(7)
    for module in (net.classifier.head, net.classifier.fc, net.classifier.encoder.global_head.conv):
        module.reset_parameters()
    after = LRPCMP(net)(x, lesions).maps.numpy().ravel()
    assert abs(np.corrcoef(before, after)[0, 1]) < 0.5
