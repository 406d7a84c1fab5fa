"""The Sharif lobe-patch system (seed 001): lobes (§2.3), patch grids (§2.4, §2.8), Eq. 2, the network (Table 1),
the weak-supervision losses (§2.7), and inference on a slice and a volume with the classifier interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from CovidCTAnalysis.classifiers.lobe_patch import aggregate, lobes as lb, patches
from CovidCTAnalysis.classifiers.lobe_patch.inputs import paper_values, slice_lobes
from CovidCTAnalysis.classifiers.lobe_patch.model import DISTANCE_SCALE, TRUNKS, LobeNet
from CovidCTAnalysis.classifiers.lobe_patch.train import lobe_loss, patch_weights, sample_lobes
from CovidCTAnalysis.labels import LEFT_LUNG, RIGHT_LUNG


@pytest.fixture(scope="module")
def demo():
    from CovidCTAnalysis.demo import make_demo_ct

    return make_demo_ct(size=(128, 128, 40), seed=0)


@pytest.fixture(scope="module")
def random_model():
    """An untrained network: what is tested with it is the plumbing, not the decisions."""
    from CovidCTAnalysis.classifiers.lobe_patch.infer import LobePatchModel

    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = LobeNet().eval()
    net.trunk = net.trunk.fused_for_inference()
    return LobePatchModel(net=net, device="cpu", version="test")


def _dice(a, b) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_lobes_are_the_right_and_left_lungs_of_the_demo_ct(demo):
    """§2.3 on a true-HU slice: the image's left object is the patient's right lung, and both match the truth."""
    hu = sitk.GetArrayFromImage(demo.image)
    truth = sitk.GetArrayFromImage(demo.lungs)
    z = int(np.argmax((truth > 0).sum(axis=(1, 2))))
    labels = lb.detect_lobes(paper_values(hu[z:z + 1])[0])
    expected = lb.to_slice_size(truth[z].astype(np.uint8), order=0)[0]
    for side in (RIGHT_LUNG, LEFT_LUNG):
        assert _dice(labels == side, expected == side) > 0.85, side


def test_outside_air_and_small_objects_are_not_lobes():
    values = np.full((512, 512), 0.5, np.float32)  # soft tissue
    values[:, :30] = 0.0  # outside air along one whole edge: the background
    values[200:260, 200:260] = 0.0  # 3 600 px of air: below §2.3's 5 000
    assert not lb.detect_lobes(values).any()
    values[100:400, 60:200] = 0.05
    values[100:400, 320:460] = 0.05
    labels = lb.detect_lobes(values)
    assert set(np.unique(labels)) == {0, RIGHT_LUNG, LEFT_LUNG}
    assert labels[250, 100] == RIGHT_LUNG and labels[250, 400] == LEFT_LUNG  # image left = patient right


def test_canvas_centres_crops_scales_big_ones_and_maps_back():
    mask = np.zeros((512, 512), bool)
    mask[100:200, 50:150] = True
    where = lb.placement(mask)
    assert where.scale == 1.0 and where.offset == (78, 78)
    image = np.random.default_rng(0).random((512, 512)).astype(np.float32)
    canvas = lb.to_canvas(image, where)
    assert np.array_equal(canvas[78:178, 78:178], image[100:200, 50:150]) and canvas[:78].max() == 0
    assert np.array_equal(lb.box_from_canvas(canvas, where), image[100:200, 50:150])
    big = np.zeros((512, 512), bool)
    big[0:400, 0:300] = True
    where = lb.placement(big)
    assert where.scale == pytest.approx(256 / 400) and where.shape == (256, 192)


def test_periphery_distance_is_manhattan():
    lobe = np.zeros((256, 256), bool)
    lobe[100:121, 100:121] = True
    d = lb.periphery_distance(lobe)
    assert d[110, 110] == 11 and d[100, 100] == 1 and d[0, 0] == 0


@pytest.mark.parametrize("grid", [patches.COARSE, patches.FINE])
def test_patch_maps_spread_as_the_maximum_of_covering_patches(grid):
    size, stride = grid
    n, pad = 256 // stride, (size - stride) // 2
    rng = np.random.default_rng(1)
    patch_map = rng.random((n, n)).astype(np.float32)
    expected = np.zeros((256, 256), np.float32)
    for j in range(n):
        for k in range(n):
            rows = slice(max(0, stride * j - pad), stride * j - pad + size)
            cols = slice(max(0, stride * k - pad), stride * k - pad + size)
            expected[rows, cols] = np.maximum(expected[rows, cols], patch_map[j, k])
    assert np.array_equal(patches.pixel_max(patch_map, grid), expected)
    pixels = rng.random((256, 256)).astype(np.float32)
    j, k = 5, 7
    window = pixels[stride * j - pad:stride * j - pad + size, stride * k - pad:stride * k - pad + size]
    assert patches.patch_min(pixels, grid)[j, k] == window.min()
    assert patches.patch_fraction(pixels > 0.5, grid)[j, k] == pytest.approx((window > 0.5).mean())
    assert patches.patch_min(pixels, grid)[0, 0] == 0  # the canvas is black beyond its edge


def test_eq2_softens_a_lobe_by_its_neighbours_and_takes_the_maximum():
    p = np.array([[0.9, 0.1], [0.2, np.nan], [0.8, 0.7], [0.9, 0.6]])
    assert np.allclose(aggregate.softened(p), [[0.2, 0.0], [0.2, 0.0], [0.8, 0.6], [0.8, 0.6]])
    assert aggregate.case_probability(p) == pytest.approx(0.8)  # the isolated 0.9 of slice 0 is softened away
    assert aggregate.case_probability(p[:1]) == pytest.approx(0.9)  # one slice: nothing to soften with


def test_infected_pixels_need_both_maps():
    coarse = np.zeros((32, 32), np.float32)
    coarse[10, 10] = 0.9
    fine = np.full((128, 128), 0.8, np.float32)
    prob, infected = aggregate.infection_pixels(coarse, fine)
    assert infected.sum() == 36 * 36 and prob.max() == pytest.approx(0.72)
    assert not aggregate.infection_pixels(coarse, fine * 0.5)[1].any()


@pytest.mark.parametrize("trunk", TRUNKS)
def test_network_outputs_table1_sizes(trunk):
    net = LobeNet(trunk).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 256, 256), torch.zeros(2, 32, 32))
    assert out["lobe_logit"].shape == (2,)
    assert out["coarse_logits"].shape == (2, 2, 32, 32) and out["fine_logits"].shape == (2, 2, 128, 128)
    assert out["attention"].shape == (2, 32, 32) and 0 < float(out["attention"].min()) < 1
    with torch.no_grad():
        feats = net.features(torch.zeros(1, 256, 32, 32), torch.full((1, 32, 32), DISTANCE_SCALE))
    assert feats.shape[1] == 385 and float(feats[0, -1].min()) == 1.0  # Fig. 2: 256 + 128 + distance
    assert not hasattr(LobeNet(trunk, infection=False), "patch")  # §2.5's network has no infection parts


def test_fused_trunk_gives_the_same_features():
    torch.manual_seed(0)
    net = LobeNet().eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics, so fusing has something to fold
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        expected = net.trunk(x)
        fused = net.trunk.fused_for_inference()(x)
    for a, b in zip(expected, fused):
        assert torch.allclose(a, b, atol=1e-4)


def test_lobe_loss_uses_the_top_30_percent_of_each_sample():
    p = torch.tensor([0.9, 0.2, 0.1, 0.3, 0.8, 0.7, 0.6, 0.5])
    owner = torch.tensor([0, 0, 1, 1, 1, 1, 1, 1])  # sample 0: 2 lobes (top 1), sample 1: 6 lobes (top 2)
    y = torch.tensor([1.0, 0.0])
    expected = (-math.log(0.9) + (-math.log(1 - 0.8) - math.log(1 - 0.7)) / 2) / 2
    assert float(lobe_loss(p, owner, y)) == pytest.approx(expected, rel=1e-5)


def test_patch_weights_follow_section_272_and_eq4():
    torch.manual_seed(0)
    logits = torch.randn(4, 2, 32, 32)
    labels = (torch.rand(4, 32, 32) < 0.1).long()
    w = patch_weights(logits, labels).reshape(labels.shape)
    positive = labels == 1
    assert float(w[positive].sum()) == pytest.approx(float(w[~positive].sum()), rel=1e-4)  # Eq. 4
    low = w[~positive] == 0.1
    assert low.float().mean().item() == pytest.approx(0.2, abs=0.03)  # the least concordant 20 % weigh 0.1
    discord = 1 - torch.softmax(logits, 1).gather(1, labels[:, None])[:, 0]
    assert float(discord[~positive][low].min()) >= float(discord[~positive][~low].max())


def test_pseudo_labels_are_empty_for_healthy_samples(demo):
    hu = sitk.GetArrayFromImage(demo.image)
    truth = sitk.GetArrayFromImage(demo.lungs)
    z = int(np.argmax((truth > 0).sum(axis=(1, 2))))
    healthy = sample_lobes(hu[z:z + 1], 0, demo.image.GetSpacing()[:2])
    diseased = sample_lobes(hu[z:z + 1], 1, demo.image.GetSpacing()[:2])
    assert len(healthy) == len(diseased) == 2
    assert all(float(s["coarse"].max()) == 0 for s in healthy)
    assert all(s["image"].shape == (3, 256, 256) and s["image"].dtype == np.uint8 for s in diseased)


def test_volume_gives_probability_percent_infected_and_maps_on_the_ct_grid(demo, random_model):
    from CovidCTAnalysis.classifiers.lobe_patch.infer import classify_volume

    result, maps, masks = classify_volume(demo.image, demo.lungs, model=random_model)
    assert 0.0 <= result["probability"] <= 1.0
    assert result["label"] == ("COVID-19" if result["probability"] >= 0.5 else "non-COVID")
    assert set(maps) == {"infection", "attention"} and set(masks) == {"lobes", "infected"}
    for image in (*maps.values(), *masks.values()):
        assert image.GetSize() == demo.image.GetSize() and image.GetOrigin() == demo.image.GetOrigin()
    lobes = sitk.GetArrayFromImage(masks["lobes"])
    truth = sitk.GetArrayFromImage(demo.lungs)
    for side in (RIGHT_LUNG, LEFT_LUNG):
        assert _dice(lobes == side, truth == side) > 0.7, side
    infected = sitk.GetArrayFromImage(masks["infected"])
    assert not (infected & (lobes == 0)).any()
    assert 0.0 <= result["percent_infected"] <= 100.0
    heat = sitk.GetArrayFromImage(maps["infection"])
    assert heat.min() >= 0 and heat.max() <= 1


def test_a_figure_is_one_slice_and_its_probability_its_larger_lobe(random_model):
    from types import SimpleNamespace

    from CovidCTAnalysis.classifiers.lobe_patch.infer import classify_image

    values = np.full((1, 300, 400), -1000.0, np.float32)  # air around a body
    values[0, 30:270, 30:370] = 40.0
    values[0, 60:240, 60:180] = -850.0
    values[0, 60:240, 220:340] = -850.0
    image = sitk.GetImageFromArray(values)
    ct = SimpleNamespace(image=image, is_2d=True, source="figure.png")
    result, maps, masks = classify_image(ct, model=random_model)
    lobes = result["lobe_probabilities"]
    assert result["lobes_found"] == 2 and result["probability"] == pytest.approx(max(lobes.values()), abs=1e-4)
    assert maps["infection"].GetSize() == image.GetSize()
    assert set(np.unique(sitk.GetArrayFromImage(masks["lobes"]))) == {0, RIGHT_LUNG, LEFT_LUNG}


def test_slice_lobes_stand_in_with_the_whole_slice_when_none_is_found(random_model):
    from types import SimpleNamespace

    from CovidCTAnalysis.classifiers.lobe_patch.infer import classify_image

    values = np.full((1, 512, 512), 0.5, np.float32)
    found, labels = slice_lobes(values, 0)
    assert len(found) == 1 and not found[0].found and not labels.any()
    image = sitk.GetImageFromArray(np.full((1, 200, 200), 40.0, np.float32))  # soft tissue only
    result, _, masks = classify_image(SimpleNamespace(image=image, is_2d=True, source="x.png"), model=random_model)
    assert result["lobes_found"] == 0 and result["percent_infected"] is None  # no lung region to measure
    assert not sitk.GetArrayFromImage(masks["lobes"]).any() and 0 <= result["probability"] <= 1


@pytest.mark.parametrize("network, trunk", [("diseased", "efficientnet-lite0"),
                                            ("covid-vs-other", "efficientnet-lite0"), ("diseased", "vgg")])
def test_weakly_supervised_training_runs_on_a_tiny_cohort(demo, network, trunk):
    """Two healthy, one COVID-19 and one other-disease sample (3 slices each; 1 for the costly VGG trunk) through one
    epoch of §2.7's losses (trunks from random weights: the plumbing is tested, not the learning)."""
    from CovidCTAnalysis.classifiers.lobe_patch import train as T
    from CovidCTAnalysis.classifiers.lobe_patch.model import LiteTrunk

    torch.manual_seed(0)
    torch.set_num_threads(1)
    hu = sitk.GetArrayFromImage(demo.image)
    truth = sitk.GetArrayFromImage(demo.lungs)
    lite = trunk != "vgg"
    zs = np.flatnonzero(truth.any(axis=(1, 2)))[[5, 15, 25] if lite else [15]]
    labels = [0, 1, 2, 0]
    rows, owner = [], []
    for i, label in enumerate(labels):
        lobes = T.sample_lobes(hu, label, demo.image.GetSpacing()[:2], zs)
        rows += lobes
        owner += [i] * len(lobes)
    cache = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    cache.update(lobe_sample=np.array(owner), y=np.array(labels, np.float32))
    feats = T.frozen_features(LiteTrunk().eval(), cache["image"]) if lite else None  # vgg: end to end
    cfg = T.TrainConfig(epochs=1, batch=2, fine_epochs=1, network=network, trunk=trunk)
    net = T.fit(cache, feats, np.arange(4), cfg, seed=0, say=lambda s: None,
                trunk_state=LiteTrunk().state_dict() if lite else None)
    assert net.infection == (network == "diseased")
    p = T.sample_probabilities(net, cache, feats, np.arange(4))
    assert p.shape == (4,) and ((p >= 0) & (p <= 1)).all()
    if net.infection:
        T.fit_fine(net, cache, np.arange(4), cfg, seed=0, say=lambda s: None)


def test_three_classes_compose_the_two_networks():
    out = aggregate.three_classes(0.8, 0.25)
    assert out == pytest.approx({"healthy": 0.2, "COVID-19": 0.2, "other disease": 0.6})


def test_report_line_gives_percent_infected_per_lung():
    from CovidCTAnalysis.pipeline.report import _classifier_line

    line = _classifier_line({"probability": 0.8, "label": "COVID-19", "percent_infected": 12.25,
                             "percent_infected_right": 20.0, "percent_infected_left": 4.5})
    assert "infected lung 12.2 % of its k-means lung regions (right 20.0 %, left 4.5 %)" in line


@pytest.fixture(scope="module")
def shipped():
    from CovidCTAnalysis.classifiers.lobe_patch.infer import load_model
    from CovidCTAnalysis.models.registry import load_registry

    if "lobe-patch" not in load_registry().entries:
        pytest.skip("lobe-patch is not registered")
    return load_model("cpu")


def test_registered_entry_matches_the_shipped_weights(shipped):
    from CovidCTAnalysis.models.registry import load_registry

    entry = load_registry().get("lobe-patch")
    assert entry.check() == "ok" and entry.task == "classification" and entry.input["trunk"] in TRUNKS
    assert shipped.net.infection and shipped.version == entry.version


@pytest.mark.realdata
def test_shipped_model_reproduces_the_cards_results(shared_data, shipped):
    """The card's per-case results (scripts/evaluate_heatmaps.py --model lobe-patch) for one COVID-19 Radiopaedia
    stack and one normal imlab thorax, run the way that script runs them (so card and weights belong together)."""
    import json
    from pathlib import Path

    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lungs.select import segment_lungs
    from CovidCTAnalysis.pipeline.classifiers import run_classifier

    card_file = Path(__file__).resolve().parents[1] / "Resources" / "Models" / "cards" / "lobe-patch" / "heatmaps.json"
    card = {c["case"]: c for c in json.loads(card_file.read_text(encoding="utf-8"))["volumes"]}
    imlab = sorted((shared_data / "imlab-lung3d").glob("id001*[0-9].nii.gz"))
    for name, path in (("radiopaedia 75329", shared_data / "radiopaedia-stacks" / "75329"),
                       ("imlab id001 (normal)", imlab[0] if imlab else None)):
        assert name in card and path is not None, name
        ct = load_ct(path)
        lungs = segment_lungs(ct.image, display_windowed=ct.display_windowed)
        run = run_classifier("lobe-patch", ct, lungs, "cpu")
        assert run.probability == pytest.approx(card[name]["probability"], abs=2e-3), name
        assert run.details["percent_infected"] == pytest.approx(card[name]["percent_infected"], abs=0.05), name
        assert set(run.segments) == {"lobes", "infected"}


def _synthetic_folder(demo, folder):
    """The demo CT as a matched pair of semi-synthetic volumes (the generator's file format): without and with its
    lesions' truth (the image is the same: only the labels differ, which is what the test needs)."""
    import json

    hu = sitk.GetArrayFromImage(demo.image)
    lungs = sitk.GetArrayFromImage(demo.lungs)
    lesions = sitk.GetArrayFromImage(demo.lesions)
    folder.mkdir()
    index = []
    for label in (0, 1):
        name = f"case{label}.npz"
        np.savez_compressed(folder / name, hu=hu.astype(np.int16), lungs=lungs,
                            lesions=lesions if label else np.zeros_like(lesions), instances=np.zeros_like(lungs),
                            meta=np.array(json.dumps({"spacing": list(demo.image.GetSpacing())})))
        index.append({"file": name, "split": "train", "label": label})
    index.append({"file": "unused.npz", "split": "test", "label": 1})
    (folder / "index.json").write_text(json.dumps(index))
    return lesions


def test_synthetic_volumes_label_patches_by_their_lesion_masks(demo, tmp_path):
    from CovidCTAnalysis.classifiers.lobe_patch import train as T

    lesions = _synthetic_folder(demo, tmp_path / "synthetic")
    items = T.synthetic_items(tmp_path / "synthetic")
    assert [(p.name, y) for p, y in items] == [("case0.npz", 0), ("case1.npz", 1)]  # the train split only
    rows = T.synthetic_sample(*items[1])
    assert 2 <= len({r["slice"] for r in rows}) <= T.SLICES
    assert any(float(r["coarse"].max()) >= patches.COARSE_DENSITY for r in rows)
    assert all(float(r["coarse"].max()) == 0 for r in T.synthetic_sample(*items[0]))
    hu = sitk.GetArrayFromImage(demo.image)
    zs = np.sort(np.argsort(-(lesions > 0).sum(axis=(1, 2)))[:2])  # the two slices with the most lesion
    spacing = demo.image.GetSpacing()[:2]
    # the truth decides, not the intensity pseudo-mask: no lesion in the truth, no positive patch
    assert all(float(r["coarse"].max()) == 0 for r in T.sample_lobes(hu, 1, spacing, zs, np.zeros_like(lesions)))
    assert any(float(r["coarse"].max()) > 0 for r in T.sample_lobes(hu, 1, spacing, zs))


def test_volume_network_fine_tunes_the_figure_network_and_shares_its_file(demo, tmp_path):
    """Training from a figure network (``init``) keeps its fixed trunk stages; the file of both networks stores them
    once; inference runs a volume through the volume network and a slice through the figure network."""
    import json

    from CovidCTAnalysis.classifiers.lobe_patch import infer, train as T
    from CovidCTAnalysis.classifiers.lobe_patch.model import VOLUMES_PREFIX, LiteTrunk
    from CovidCTAnalysis.models.registry import sha256_file
    from CovidCTAnalysis.models.weights import half_state, load_state, merged_states, save_half

    torch.manual_seed(0)
    torch.set_num_threads(1)
    _synthetic_folder(demo, tmp_path / "synthetic")
    cache = T.build_cache(T.synthetic_items(tmp_path / "synthetic"), tmp_path / "cache.npz", T.synthetic_sample,
                          say=lambda s: None)
    figures = LobeNet().eval()
    trunk = figures.trunk
    start = tmp_path / "figures.pt"
    save_half(figures, start)
    feats = T.frozen_features(trunk, cache["image"])
    cfg = T.TrainConfig(epochs=1, batch=2, lr=1e-2, fine_epochs=1, init=str(start), patch_weight=1.0)
    net = T.fit(cache, feats, np.arange(2), cfg, seed=0, say=lambda s: None, trunk_state=trunk.state_dict())
    T.fit_fine(net, cache, np.arange(2), cfg, seed=0, say=lambda s: None)
    both = merged_states(load_state("", weights=start), half_state(net), VOLUMES_PREFIX)
    own = [k for k in both if k.startswith(VOLUMES_PREFIX)]
    assert own and not any(k.startswith(VOLUMES_PREFIX + "trunk.stage1.") for k in own)  # fixed stages stored once
    assert any(k.startswith(VOLUMES_PREFIX + "trunk.stage5.") for k in own)  # trained ones are its own

    other = LobeNet()  # a file whose fixed stages are not the cached features' trunk is refused
    save_half(other, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="fixed stages"):
        T.fit(cache, feats, np.arange(2), T.TrainConfig(epochs=1, init=str(tmp_path / "other.pt")), seed=0,
              say=lambda s: None, trunk_state=trunk.state_dict())

    torch.save(both, tmp_path / "both.pt")
    entry = {"name": "lobe-patch", "version": "9.9.9", "task": "classification", "weights": "both.pt",
             "sha256": sha256_file(tmp_path / "both.pt"), "input": {"trunk": "efficientnet-lite0"},
             "card": "card.md"}
    (tmp_path / "registry.json").write_text(json.dumps({"schema": 1, "models": [entry]}))
    model = infer.load_model("cpu", tmp_path / "registry.json")
    assert model.volume_net is not None and model.version == "9.9.9"
    lobes, _ = slice_lobes(paper_values(sitk.GetArrayFromImage(demo.image)[18:21]), 1)
    by_volume, by_figure = model.lobes(lobes, volume=True)[0], model.lobes(lobes)[0]
    with torch.no_grad():
        x = torch.from_numpy(np.stack([lobe.image for lobe in lobes]))
        d = torch.from_numpy(np.stack([lobe.distance for lobe in lobes]))
        expected = torch.sigmoid(figures(x, d)["lobe_logit"]).numpy()
    assert np.allclose(by_figure, expected, atol=1e-3) and not np.allclose(by_volume, by_figure, atol=1e-4)
    result, _, _ = infer.classify_volume(demo.image, demo.lungs, model=model)
    assert result["network"] == "volumes"
