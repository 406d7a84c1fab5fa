"""DA-CMIL (seed 004) building blocks: patch bags, the dual-attention network, the contrastive loss, the baselines and
the training loop, on synthetic inputs (no trained weights needed)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from CovidCTAnalysis.classifiers.da_cmil import bags
from CovidCTAnalysis.classifiers.da_cmil.model import DACMIL, BaselineMIL, build, contrastive_loss
from CovidCTAnalysis.classifiers.da_cmil.train import BagSet, TrainConfig, cohort_items, fit, paper_recipe, predict
from CovidCTAnalysis.errors import InputError


def _chest(size=200):
    """(HU slice, lung mask): two elliptic lungs in a body, air outside."""
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - size / 2) / (0.4 * size)) ** 2 + ((xx - size / 2) / (0.47 * size)) ** 2 <= 1
    lungs = np.zeros((size, size), bool)
    for cx in (0.3 * size, 0.7 * size):
        lungs |= ((yy - size / 2) / (0.3 * size)) ** 2 + ((xx - cx) / (0.16 * size)) ** 2 <= 1
    hu = np.where(body, 40.0, -1000.0)
    hu[lungs] = -850.0
    return hu.astype(np.float32), lungs


def test_slice_bag_keeps_windows_that_are_mostly_lung():
    hu, lungs = _chest()
    bag = bags.slice_bag(hu, lungs)
    assert 1 <= len(bag) <= 9
    assert bag.patches.shape[1:] == (bags.PATCH, bags.PATCH)
    assert np.all(bag.lung_fraction >= bags.MIN_LUNG_FRACTION)
    # the kept windows are exactly the grid windows whose framed lung share reaches 30 %
    _, lung_frame = bags.frames(hu[None], lungs[None], bag.box)
    lung_frame = lung_frame[0]
    shares = [lung_frame[y:y + bags.PATCH, x:x + bags.PATCH].mean() for y, x in bags.corners()]
    assert len(bag) == sum(s >= bags.MIN_LUNG_FRACTION for s in shares)
    # lung patches are dark: most of a patch is lung-window intensity of -850 HU
    assert np.median(bag.patches) < 0.5


def test_slice_without_lung_has_an_empty_bag_and_a_speck_keeps_one_window():
    hu, lungs = _chest()
    assert len(bags.slice_bag(hu, np.zeros_like(lungs))) == 0
    speck = np.zeros_like(lungs)
    speck[100:104, 40:44] = True  # lung far below 30 % of any window
    bag = bags.slice_bag(hu, speck, box=(slice(0, 200), slice(0, 200)))
    assert len(bag) == 1 and 0 < bag.lung_fraction[0] < bags.MIN_LUNG_FRACTION


def test_place_puts_each_map_on_its_window():
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0] = 1.0
    out = bags.place(maps, np.array([[0, 0], [192, 192]]))
    assert out[:bags.PATCH, :bags.PATCH].min() == pytest.approx(1.0)
    assert out[200:, 200:].max() == 0.0
    overlapping = bags.place(np.ones((2, 4, 4), np.float32), np.array([[0, 0], [0, 96]]))
    assert overlapping[:bags.PATCH, :224].min() == pytest.approx(1.0)  # overlaps averaged, not summed


def test_network_outputs_and_attention_sum_to_one():
    net = DACMIL().eval()
    with torch.no_grad():
        out = net(torch.randn(7, 1, 128, 128), [3, 4])
    assert out.logits.shape == (2,) and out.features.shape == (7, 512) and out.bags.shape == (2, 512)
    assert out.spatial.shape == (7, 4, 4)
    assert torch.allclose(out.attention[:3].sum(), torch.tensor(1.0)) and torch.allclose(out.attention[3:].sum(),
                                                                                          torch.tensor(1.0))
    assert torch.allclose(out.spatial.sum(dim=(1, 2)), torch.ones(7))
    # the bag feature is the attention-weighted mean of its instances (Eq. 3)
    assert torch.allclose(out.bags[0], out.attention[:3] @ out.features[:3], atol=1e-5)


def test_bag_prediction_does_not_depend_on_instance_order():
    torch.manual_seed(0)
    net = DACMIL().eval()
    x = torch.randn(5, 1, 128, 128)
    with torch.no_grad():
        a = net(x, [5]).logits
        b = net(x[[4, 2, 0, 3, 1]], [5]).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_contrastive_loss_is_low_when_instances_match_their_bag():
    torch.manual_seed(0)
    bags_ = torch.randn(3, 16)
    sizes = [2, 3, 2]
    owner = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    aligned = bags_[owner] + 0.01 * torch.randn(7, 16)
    shuffled = bags_[torch.tensor([1, 2, 0])][owner] + 0.01 * torch.randn(7, 16)
    low, high = contrastive_loss(aligned, bags_, sizes, tau=0.1), contrastive_loss(shuffled, bags_, sizes, tau=0.1)
    assert low < high
    assert torch.isfinite(contrastive_loss(aligned, bags_, sizes))


@pytest.mark.parametrize("method", ["max", "attention"])
def test_baselines_give_one_logit_per_bag(method):
    net = BaselineMIL(method).eval()
    with torch.no_grad():
        out = net(torch.randn(5, 1, 128, 128), [2, 3])
    assert out.logits.shape == (2,)
    assert torch.allclose(out.attention[:2].sum(), torch.tensor(1.0))


def _toy_bags(n=16, seed=0):
    """Bags whose positives hold one bright patch among dark ones: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    patches, starts, labels = [], [0], []
    for j in range(n):
        size = int(rng.integers(2, 5))
        bag = rng.integers(20, 60, (size, bags.PATCH, bags.PATCH)).astype(np.uint8)
        if j % 2:
            bag[rng.integers(size), 32:96, 32:96] = 220
        patches.append(bag)
        starts.append(starts[-1] + size)
        labels.append(j % 2)
    return BagSet(np.concatenate(patches), np.array(starts), np.array(labels, np.float32),
                  np.array([f"b{j}" for j in range(n)]), np.ones(n, bool))


def test_training_learns_a_toy_mil_problem(monkeypatch):
    # from scratch, the backbone's TF-style BatchNorm momentum (0.01) would leave its running statistics near their
    # initial values after these few steps; the pretrained start of real training has ImageNet statistics instead
    monkeypatch.setattr("CovidCTAnalysis.networks.efficientnet_lite.BN_MOMENTUM", 0.3)
    data = _toy_bags()
    cfg = TrainConfig(epochs=6, pretrained="none", batch=4, lr=3e-3, encoder_lr=1e-3, milestones=(0.9,), threads=1)
    net = fit(data, cfg, seed=0, say=lambda s: None)
    p = predict(net, data)
    assert len(cfg.log) == 6
    from CovidCTAnalysis.evaluation import metrics

    assert metrics.roc_auc(data.labels, p) >= 0.9


def test_paper_recipe_and_build():
    cfg = paper_recipe()
    assert (cfg.epochs, cfg.k, cfg.instance_size, cfg.lam, cfg.tau) == (30, 32, 256, 0.5, 1.0)
    assert isinstance(build("da-cmil"), DACMIL) and isinstance(build("max"), BaselineMIL)
    with pytest.raises(ValueError):
        build("mean")


def test_cohort_csv_is_checked(tmp_path):
    path = tmp_path / "cases.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["path", "label"], ["a.png", "1"], ["b.png", "non-COVID"]])
    items = cohort_items(path)
    assert [y for _, y in items] == [1, 0] and items[0][0] == tmp_path / "a.png"
    path.write_text("path,label\na.png,maybe\n")
    with pytest.raises(InputError, match="line 2"):
        cohort_items(path)
    path.write_text("path,label\na.png,1\n")
    with pytest.raises(InputError, match="both"):
        cohort_items(path)


def _volume(slices=12, size=120):
    """(HU volume, lung mask) of ``slices`` copies of ``_chest`` with the lungs shrinking towards both ends."""
    hu, lungs = _chest(size)
    vol_hu = np.repeat(hu[None], slices, axis=0)
    vol_lungs = np.repeat(lungs[None], slices, axis=0)
    vol_lungs[0] = False  # a slice without lung is not a lung slice
    return vol_hu, vol_lungs.astype(np.uint8)


def test_volume_frames_sample_the_lung_slices_every_5_mm():
    hu, lungs = _volume(slices=13)
    frames = bags.volume_frames(hu, lungs, dz_mm=2.5)
    assert frames.zs.tolist() == list(range(1, 13))
    assert frames.picked.tolist() == [0, 2, 4, 6, 8, 10] and frames.sampled_z.tolist() == [1, 3, 5, 7, 9, 11]
    assert frames.unit.shape == frames.lung.shape == (6, bags.FRAME, bags.FRAME)
    assert len(frames.owner) == 12 and frames.owner.max() == 5
    assert 0.0 <= frames.unit.min() and frames.unit.max() <= 1.0 and frames.lung.any()
    assert bags.volume_frames(hu, np.zeros_like(lungs), 2.5) is None
    assert bags.upsample_to_frame(np.ones((2, 8, 8))).shape == (2, bags.FRAME, bags.FRAME)


def test_train_volumes_fine_tunes_from_a_patch_network_and_scores_the_test_split(tmp_path):
    import json

    from CovidCTAnalysis.classifiers.da_cmil.model import SLICES_PREFIX
    from CovidCTAnalysis.classifiers.da_cmil.train import synthetic_bags, train_volumes, volume_recipe
    from CovidCTAnalysis.classifiers.decovnet.synthetic import load_case  # the format synthetic_bags reads
    from CovidCTAnalysis.models.weights import save_half, split_states

    folder = tmp_path / "synthetic"
    folder.mkdir()
    index = []
    for i in range(8):
        hu, lungs = _volume(slices=8, size=96)
        label = i % 2
        if label:
            hu[3:6, 30:50, 20:40] = -300.0  # an opacity in the right lung
        name = f"case{i}.npz"
        np.savez_compressed(folder / name, hu=hu.astype(np.int16), lungs=lungs, lesions=np.zeros_like(lungs),
                            instances=np.zeros_like(lungs), meta=np.array(json.dumps({"spacing": [1.0, 1.0, 5.0]})))
        index.append({"file": name, "split": "test" if i >= 6 else "train", "label": label})
        assert load_case(folder / name)[3]["spacing"][2] == 5.0
    (folder / "index.json").write_text(json.dumps(index))
    data, split = synthetic_bags(folder, tmp_path / "cache", say=lambda s: None)
    assert len(data.labels) == 8 and data.sizes().tolist() == [7] * 8 and split.tolist().count("test") == 2
    assert data.patches.shape[1:] == (bags.FRAME, bags.FRAME)

    torch.manual_seed(0)
    start = tmp_path / "patch.pt"
    save_half(DACMIL().eval(), start)
    cfg = volume_recipe(epochs=1, k=3, batch=2, instance_size=64, threads=1, init=str(start))
    assert volume_recipe().freeze_encoder and volume_recipe().instance_size == 256
    state, summary = train_volumes(cfg, synthetic=folder, cache_dir=tmp_path / "cache", say=lambda s: None)
    patch, slices = split_states(state, SLICES_PREFIX)
    original = torch.load(start, weights_only=True)
    assert all(torch.equal(patch[k], original[k]) for k in original)  # the patch network is carried unchanged
    assert set(slices) == set(original) and any(not torch.equal(slices[k], original[k]) for k in original)
    assert all(torch.equal(slices[k], original[k]) for k in original if k.startswith("encoder."))  # frozen
    assert summary["synthetic_test"]["n"] == 2 and set(summary["synthetic_test_cases"]) == {"case6.npz", "case7.npz"}


def test_volume_cohort_is_read_as_inference_reads_volumes_and_refuses_a_2d_image(tmp_path):
    from PIL import Image

    from CovidCTAnalysis.classifiers.da_cmil.train import volume_cohort_bags
    from CovidCTAnalysis.demo import make_demo_ct, write_demo_case

    rows = ["path,label"]
    for seed, lesions in ((3, True), (4, False)):
        case = make_demo_ct(size=(96, 96, 24), seed=seed, lesions=lesions)
        rows.append(f"{write_demo_case(case, tmp_path / f'case{seed}')},{int(lesions)}")
    (tmp_path / "volumes.csv").write_text("\n".join(rows) + "\n")
    data = volume_cohort_bags(tmp_path / "volumes.csv", say=lambda s: None)
    assert data.labels.tolist() == [1.0, 0.0] and (data.sizes() > 0).all()
    assert data.patches.shape[1:] == (bags.FRAME, bags.FRAME) and data.patches.dtype == np.uint8

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)).save(tmp_path / "figure.png")
    (tmp_path / "mixed.csv").write_text("\n".join(rows[:2] + ["figure.png,0"]) + "\n")
    with pytest.raises(InputError, match="2-D image") as err:
        volume_cohort_bags(tmp_path / "mixed.csv", say=lambda s: None)
    assert "figure.png" in str(err.value)
