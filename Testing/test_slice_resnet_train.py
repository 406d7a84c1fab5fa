"""slice-resnet training: patient-disjoint stratified folds, patient IDs from the COVID-CT metadata, one tiny fit."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.classifiers.slice_resnet.train import (
    TrainConfig, fit, folds, mixup, patient_ids, pooled, predict, probe_head)


def test_folds_are_patient_disjoint_stratified_and_cover_every_figure():
    groups = np.array([f"p{i // 3}" for i in range(150)])  # 50 patients, 3 figures each
    y = (np.arange(150) // 3 % 2).astype(np.float32)  # a patient's figures share the label
    parts = folds(y, groups, k=5, seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(150))
    for i, a in enumerate(parts):
        assert 0.3 < y[a].mean() < 0.7
        for b in parts[i + 1:]:
            assert not set(groups[a]) & set(groups[b])


def test_pooled_gives_figures_without_an_id_their_own_group():
    data = {"train_x": np.zeros((2, 4, 4), np.uint8), "val_x": np.zeros((1, 4, 4), np.uint8),
            "train_y": np.array([1, 0], np.float32), "val_y": np.array([1], np.float32),
            "train_names": np.array(["a.png", "b.png"]), "val_names": np.array(["c.png"])}
    x, y, names, groups = pooled(data, {"a.png": "covid:Patient 1", "c.png": "covid:Patient 1"})
    assert x.shape[0] == 3 and y.tolist() == [1, 0, 1]
    assert groups.tolist() == ["covid:Patient 1", "figure:b.png", "covid:Patient 1"]


@pytest.mark.realdata
def test_every_covid_ct_figure_has_a_patient(shared_data):
    from CovidCTAnalysis.evaluation import covid_ct_split

    ids = patient_ids(shared_data / "covid-ct")
    names = [p.name for split in ("train", "val") for p, _ in covid_ct_split(shared_data / "covid-ct", split)]
    assert all(n in ids for n in names)
    assert len({ids[n] for n in names}) > 250  # 543 figures of a few hundred patients


def test_one_epoch_fit_from_scratch_runs_and_predicts_probabilities():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (4, 256, 256), dtype=np.uint8)
    y = np.array([0, 1, 0, 1], np.float32)
    cfg = TrainConfig(pretrained="none", epochs=1, batch=2, crop=96, input_size=128, threads=1)
    net = fit(x, y, cfg, seed=0, say=lambda s: None)
    p = predict(net, x)
    assert p.shape == (4,) and np.all((p >= 0) & (p <= 1))
    assert [e["epoch"] for e in cfg.log] == [1]


def test_the_seed_changes_the_networks_not_the_folds(monkeypatch, tmp_path):
    """Runs of one recipe with other seeds score the same held-out figures (seed spread, seed ensembles); the fit
    gets a seed that does depend on the run's."""
    from CovidCTAnalysis.classifiers.slice_resnet import train

    y = np.array([0, 1] * 60)
    x, names = np.zeros((120, 1)), np.array([f"f{i}" for i in range(120)])
    groups = np.array([f"p{i}" for i in range(120)])
    monkeypatch.setattr(train, "_cache", lambda *a: None)
    monkeypatch.setattr(train, "patient_ids", lambda root: {})
    monkeypatch.setattr(train, "pooled", lambda data, ids: (x, y, names, groups))
    fit_seeds = []
    monkeypatch.setattr(train, "fit", lambda xs, ys, cfg, seed, **kw: fit_seeds.append(seed))
    monkeypatch.setattr(train, "predict", lambda net, xs, **kw: np.linspace(0, 1, len(xs)))
    runs = {seed: train.cross_validate(tmp_path, tmp_path, TrainConfig(seed=seed), say=lambda m: None)
            for seed in (0, 1)}
    assert runs[0]["fold_of"] == runs[1]["fold_of"]
    assert fit_seeds[:5] != fit_seeds[5:]


def test_a_larger_input_size_trains_and_predicts_at_that_size(monkeypatch, tmp_path):
    """--input-size: the cache is built at inputs.cache_size of it, the batches are crops of that input and the
    held-out figures are predicted at the full input size."""
    from CovidCTAnalysis.classifiers.slice_resnet import inputs, train

    sizes = {}
    real_to_tensor = inputs.to_tensor

    def to_tensor(squares, size=inputs.INPUT_SIZE):
        sizes.setdefault("input", set()).add(size)
        return real_to_tensor(squares, size)

    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 5, np.float32)
    x = rng.integers(0, 255, (10, 64, 64), dtype=np.uint8)

    def cache(root, cache_dir, focus, size):
        sizes["cache"] = size
        return {"train_x": x, "val_x": x[:0], "train_y": y, "val_y": y[:0], "train_names": np.array(
            [f"f{i}.png" for i in range(10)]), "val_names": np.array([], str)}

    monkeypatch.setattr(train, "covid_ct_cache", cache)
    monkeypatch.setattr(train, "patient_ids", lambda root: {})
    monkeypatch.setattr(inputs, "to_tensor", to_tensor)
    cfg = TrainConfig(pretrained="none", epochs=1, batch=4, crop=64, input_size=96, threads=1)
    out = train.cross_validate(tmp_path, tmp_path, cfg, k=2, say=lambda m: None)
    assert sizes == {"cache": inputs.cache_size(96), "input": {96}}
    assert len(out["folds"]) == 2 and out["config"]["input_size"] == 96


def test_mixup_blends_figures_and_targets_with_one_weight():
    import torch

    batch = torch.stack([torch.full((1, 4, 4), float(v)) for v in (0.0, 1.0, 2.0, 3.0)])
    targets = torch.tensor([0.0, 1.0, 0.0, 1.0])
    mixed, soft = mixup(batch, targets, 0.4, np.random.default_rng(0))
    draws = np.random.default_rng(0)
    lam, perm = float(draws.beta(0.4, 0.4)), draws.permutation(4)
    assert 0.0 < lam < 1.0
    assert torch.allclose(mixed[:, 0, 0, 0], lam * batch[:, 0, 0, 0] + (1 - lam) * batch[perm, 0, 0, 0])
    assert torch.allclose(soft, lam * targets + (1 - lam) * targets[perm])


def test_mixup_off_leaves_the_recipe_unchanged():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (4, 256, 256), dtype=np.uint8)
    y = np.array([0, 1, 0, 1], np.float32)
    nets = [fit(x, y, TrainConfig(pretrained="none", epochs=1, batch=4, crop=96, input_size=128, threads=1, mixup=alpha), seed=0,
                say=lambda s: None) for alpha in (0.0, 0.0, 0.4)]
    same = [torch_equal(nets[0], n) for n in nets[1:]]
    assert same == [True, False]


def test_the_probe_head_separates_what_the_frozen_features_separate():
    """LP-FT's start: the head fitted on the frozen features ranks the training squares as the logistic regression
    does, the features themselves untouched."""
    from CovidCTAnalysis.classifiers.slice_resnet.train import initial_network
    from CovidCTAnalysis.evaluation.metrics import roc_auc

    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 12, np.float32)
    x = rng.integers(0, 120, (24, 146, 146), dtype=np.uint8)
    x[y == 1, 40:100, 40:100] += 120  # a bright square: the positives' mark
    net = initial_network(TrainConfig(pretrained="none", input_size=128))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    probe_head(net, x, y, 128)
    assert roc_auc(y, predict(net, x, size=128)) > 0.95
    changed = sorted(k for k, v in net.state_dict().items() if not (v == before[k]).all())
    assert changed == ["_fc.bias", "_fc.weight"]
    strong = net._fc.weight.abs().sum().item()
    probe_head(net, x, y, 128, c="1e-4")  # the strongest regularisation: a smaller head, the same ranking
    assert net._fc.weight.abs().sum().item() < strong and roc_auc(y, predict(net, x, size=128)) > 0.95
    assert 1e-4 <= probe_head(net, x, y, 128, c="auto") <= 10
    assert roc_auc(y, predict(net, x, size=128)) > 0.95


def torch_equal(a, b) -> bool:
    import torch

    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("args, message", [
    (["--lesion-guidance", "1.0"], "add --input-size 224"),
    (["--input-size", "224", "--crop", "256"], "--crop takes 32 px up to --input-size (224)"),
    (["--input-size", "20"], "--input-size takes 64-1024 px"),
    (["--probe-head", "--backbone", "resnet18"], "--probe-head needs an efficientnet-lite backbone"),
    (["--probe-head", "--probe-c", "0"], "--probe-c takes a number > 0 or 'auto'"),
], ids=["guidance at 320 px", "crop larger than the input", "tiny input", "probe head on a ResNet", "probe C of 0"])
def test_the_trainer_refuses_sizes_it_cannot_train_with_one_line(args, message, tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import train_slice_resnet

    assert train_slice_resnet.main(args + ["--out", str(tmp_path / "w.pt"), "--data", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
