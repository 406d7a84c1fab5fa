"""cvae-netvlad's ``--tune-last-stage`` option: the split trunk equals the whole one, only the last stage trains
(BatchNorm statistics kept), and the tuned stage is what ships inside the trunk."""

from __future__ import annotations

import torch

from CovidCTAnalysis.classifiers.cvae_netvlad import branches, inputs
from CovidCTAnalysis.classifiers.cvae_netvlad import train as cvae_train
from CovidCTAnalysis.classifiers.cvae_netvlad.classifier import CVAENetVLAD
from CovidCTAnalysis.classifiers.cvae_netvlad.focal import focal_loss

RealTrunk = branches.FrozenTrunk


def _trunk() -> branches.FrozenTrunk:
    torch.manual_seed(0)
    trunk = RealTrunk(pretrained=False).eval()
    for m in trunk.modules():  # non-trivial BatchNorm statistics, so that keeping them is observable
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return trunk


def test_the_trunk_split_before_its_last_stage_gives_the_whole_trunks_features():
    trunk = _trunk()
    x = torch.randn(2, 1, inputs.SIZE, inputs.SIZE)
    with torch.no_grad():
        below = trunk.below_last_stage(x)
        assert below.shape[1] == 80 and below.shape[2:] == (inputs.SIZE // 16,) * 2
        assert torch.allclose(trunk.last_stage()(below), trunk(x), atol=1e-5)


def test_only_the_copied_stage_trains_and_its_batchnorm_statistics_stay():
    trunk = _trunk()
    net = cvae_train.staged(trunk.last_stage(), CVAENetVLAD(side=True))
    bn = next(m for m in net.stage.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    net.train()
    feats = torch.randn(8, 80, inputs.SIZE // 16, inputs.SIZE // 16)
    lesions = (torch.rand(8, 1, inputs.SIDE, inputs.SIDE) > 0.7).float()
    loss = focal_loss(net(feats, lesions), torch.tensor([0, 1] * 4))
    loss.backward()
    assert torch.equal(bn.running_mean, before)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.stage.parameters())
    assert all(not p.requires_grad for p in trunk.parameters())  # the trunk it was copied from stays frozen


def test_the_tuned_stage_ships_inside_the_trunk(monkeypatch):
    monkeypatch.setattr(branches, "FrozenTrunk", lambda: _trunk())
    net = cvae_train.staged(_trunk().last_stage(), CVAENetVLAD(side=True))
    with torch.no_grad():
        for p in net.stage.parameters():
            p.add_(0.1)
    state = cvae_train.shipped_state(net)
    full = RealTrunk(pretrained=False)
    full.load_state_dict({k[len("trunk."):]: v.float() for k, v in state.items() if k.startswith("trunk.")})
    for shipped, tuned in zip(full.last_stage().state_dict().values(), net.stage.state_dict().values()):
        assert torch.allclose(shipped.float(), tuned.float(), rtol=1e-2, atol=1e-3)
    assert any(k.startswith("classifier.encoder.") for k in state)
    assert not any(k.startswith("classifier.stage.") or k.startswith("classifier.net.") for k in state)
