"""iCovid (seed 000) network pieces: the two-branch encoder and its gating, the CVAE and its ELBO, SPP + NetVLAD, the
focal loss, and a training step of each stage that lowers its loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from CovidCTAnalysis.classifiers.cvae_netvlad import inputs
from CovidCTAnalysis.classifiers.cvae_netvlad.branches import Encoder, FrozenTrunk, SideBranch
from CovidCTAnalysis.classifiers.cvae_netvlad.classifier import CVAENetVLAD, FullNetwork
from CovidCTAnalysis.classifiers.cvae_netvlad.cvae import CVAE, LATENT, RECON, elbo_loss
from CovidCTAnalysis.classifiers.cvae_netvlad.focal import focal_loss
from CovidCTAnalysis.classifiers.cvae_netvlad.netvlad import NetVLAD, spp

GRID = inputs.SIZE // 16


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    torch.set_num_threads(1)


def _batch(n: int = 4):
    return torch.randn(n, 112, GRID, GRID), (torch.rand(n, 1, inputs.SIDE, inputs.SIDE) > 0.7).float()


def test_encoder_gates_the_global_branch_with_the_side_branch():
    features, lesions = _batch()
    enc = Encoder(side=True)
    f = enc(features, lesions)
    assert f.shape == (4, 64, GRID, GRID) and f.min() >= 0  # Eq. 2: ReLU of the Hadamard product
    expected = torch.relu(enc.global_head(features) * enc.side(lesions))
    assert torch.allclose(f, expected)
    assert Encoder(side=False)(features, lesions).shape == (4, 64, GRID, GRID)


def test_side_branch_is_the_papers_three_convolutions():
    side = SideBranch()
    convs = [m for m in side.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(16, (5, 5)), (32, (3, 3)), (64, (3, 3))]
    n = sum(p.numel() for p in side.parameters())
    assert n == (25 * 16 + 16) + (16 * 9 * 32 + 32) + (32 * 9 * 64 + 64)


def test_frozen_trunk_gives_the_stride_16_map_and_never_trains():
    trunk = FrozenTrunk(pretrained=False)
    trunk.train()
    assert not trunk.training and not any(m.training for m in trunk.modules())
    assert not any(p.requires_grad for p in trunk.parameters())
    assert trunk(torch.zeros(1, 1, inputs.SIZE, inputs.SIZE)).shape == (1, 112, GRID, GRID)


def test_cvae_shapes_and_elbo():
    features, lesions = _batch()
    y = torch.tensor([0, 1, 0, 1])
    cvae = CVAE(side=True)
    assert cvae.embedding.embedding_dim == 64 and cvae.context.fc.out_features == 64
    recon, (mu_q, logvar_q), (mu_p, logvar_p) = cvae(features, lesions, y)
    assert recon.shape == (4, 1, RECON, RECON) and mu_q.shape == logvar_p.shape == (4, LATENT)
    target = torch.rand(4, 1, RECON, RECON)
    # identical q and p: the loss is the reconstruction term alone
    same = elbo_loss(recon, target, (mu_q, logvar_q), (mu_q, logvar_q))
    assert float(same.detach()) == pytest.approx(float(0.5 * (recon - target).pow(2).flatten(1).sum(1).mean()), rel=1e-5)
    assert float(elbo_loss(recon, target, (mu_q, logvar_q), (mu_p, logvar_p))) > float(same)


def test_spp_levels_and_classifier_shapes():
    x = torch.randn(2, 64, GRID, GRID)
    assert spp(x).shape == (2, 64 * (25 + 9 + 4))
    net = CVAENetVLAD(side=True).eval()
    assert net.fc.out_features == 512 and net.netvlad.clusters == 64 and net.head.out_features == 2
    features, lesions = _batch(5)
    assert net(features, lesions).shape == (5, 2)  # every slice its own case
    assert net(features, lesions, [2, 3]).shape == (2, 2)  # two cases of 2 and 3 slices


def test_netvlad_is_a_normalised_permutation_invariant_set_function():
    vlad = NetVLAD(clusters=8, dim=16).eval()
    x = torch.randn(1, 5, 16)
    v = vlad(x)
    assert v.shape == (1, 8 * 16) and float(v.norm()) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(vlad(x[:, torch.randperm(5)]), v, atol=1e-5)
    padded = torch.cat([x, torch.randn(1, 2, 16)], dim=1)
    mask = torch.tensor([[1.0] * 5 + [0.0] * 2])
    assert torch.allclose(vlad(padded, mask), v, atol=1e-5)  # masked rows do not count
    vlad.frozen = True  # the explanation pass: same values, clustering and norms held constant
    assert torch.allclose(vlad(x), v, atol=1e-6)
    # frozen (and no centroid offset) the layer is linear: gradient x input gives back the output
    with torch.no_grad():
        vlad.centroids.zero_()
    xg = x.clone().requires_grad_(True)
    out = vlad(xg)
    (g,) = torch.autograd.grad(out[0, 3], xg)
    assert float((g * x).sum()) == pytest.approx(float(out[0, 3]), rel=1e-4, abs=1e-7)


def test_focal_loss_values():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    y = torch.tensor([1, 0])
    p1 = torch.softmax(logits, 1)
    expected = (-0.35 * (1 - p1[0, 1]) ** 5 * torch.log(p1[0, 1]) - 0.25 * (1 - p1[1, 0]) ** 5 * torch.log(p1[1, 0])) / 2
    assert float(focal_loss(logits, y)) == pytest.approx(float(expected), rel=1e-5)
    # gamma 0, lambda 1: cross-entropy
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert float(focal_loss(logits, y, lam=(1.0, 1.0), gamma=0.0)) == pytest.approx(float(ce), rel=1e-6)
    # a confident right answer costs almost nothing (the (1 - p)^gamma factor)
    assert float(focal_loss(torch.tensor([[-4.0, 4.0]]), torch.tensor([1]))) < 1e-15


def _steps(net, loss_of, n: int = 5) -> tuple[float, float]:
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    first = last = None
    for _ in range(n):
        loss = loss_of()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss) if first is None else first
        last = float(loss)
    return first, last


def test_a_training_step_lowers_each_stages_loss():
    features, lesions = _batch(8)
    y = torch.tensor([0, 1] * 4)
    target = torch.rand(8, 1, RECON, RECON)
    cvae = CVAE(side=True)
    cvae.train()
    torch.manual_seed(1)
    first, last = _steps(cvae, lambda: elbo_loss(*(lambda r, q, p: (r, target, q, p))(*cvae(features, lesions, y))))
    assert last < first
    net = CVAENetVLAD(side=True)
    first, last = _steps(net, lambda: focal_loss(net(features, lesions), y))
    assert last < first


def test_full_network_runs_a_case_of_slices():
    net = FullNetwork(CVAENetVLAD(side=True), FrozenTrunk(pretrained=False)).eval()
    x = inputs.network_input(np.random.default_rng(0).random((3, inputs.SIZE, inputs.SIZE)))
    m = torch.zeros(3, 1, inputs.SIDE, inputs.SIDE)
    assert net(x, m).shape == (1, 2)
