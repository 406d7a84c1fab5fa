"""slice-resnet's semi-synthetic CT slices: the slice labels follow the lesion masks, the squares are framed as
inference frames a CT, the draws are balanced, and the extra term learns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from CovidCTAnalysis.classifiers.slice_resnet import inputs
from CovidCTAnalysis.classifiers.slice_resnet.synthetic_slices import (
    MIN_LESION_MM2, balanced_draw, slice_squares, synthetic_cache)
from CovidCTAnalysis.classifiers.slice_resnet.train import TrainConfig, fit

from conftest import load_script


def _volume(z=6):
    hu = np.full((z, 64, 64), -1000.0, np.float32)
    hu[:, 8:56, 8:56] = 40.0                        # body
    lungs = np.zeros(hu.shape, np.uint8)
    lungs[:, 16:48, 14:30], lungs[:, 16:48, 34:50] = 1, 2
    hu[lungs > 0] = -850.0
    return hu, lungs


def test_slice_labels_follow_the_lesion_area():
    hu, lungs = _volume()
    lesions = np.zeros(hu.shape, np.uint8)
    lesions[1, 20:30, 16:26] = 1                     # 100 px = 100 mm2 at 1 mm: positive
    lesions[2, 20:22, 16:18] = 1                     # 4 mm2: too small for either label, left out
    x, y = slice_squares(hu, lungs, lesions, (1.0, 1.0, 5.0), negative_volume=False)
    assert y.tolist() == [1.0]                       # a positive volume's lesion-free slices are not negatives
    x, y = slice_squares(hu, lungs, np.zeros_like(lesions), (1.0, 1.0, 5.0), negative_volume=True)
    assert y.tolist() == [0.0] * 6 and x.shape == (6, inputs.CACHE_SIZE, inputs.CACHE_SIZE) and x.dtype == np.uint8
    box = inputs.lung_roi(lungs)                     # framed on the case's lung ROI, as infer frames a volume
    np.testing.assert_array_equal(x[0], np.rint(inputs.square_from_hu(hu[0], box) * 255).astype(np.uint8))
    # the threshold is an area in mm2: the same 4 px lesion counts at 4 mm x 4 mm pixels
    assert 4 * 16.0 >= MIN_LESION_MM2 > 4 * 1.0
    _, y = slice_squares(hu, lungs, lesions, (4.0, 4.0, 5.0), negative_volume=False)
    assert y.tolist() == [1.0, 1.0]


def test_balanced_draw():
    labels = np.array([1] * 3 + [0] * 97, np.float32)
    pick = balanced_draw(labels, 16, np.random.default_rng(0))
    assert len(pick) == 16 and labels[pick].sum() == 8 and np.all(np.diff(pick) >= 0)


def test_synthetic_cache_reads_a_generated_folder(tmp_path):
    from CovidCTAnalysis.classifiers.decovnet import synthetic as S

    hu, lungs = _volume()
    lesions = np.zeros(hu.shape, np.uint8)
    lesions[2:4, 20:30, 16:26] = 1
    rows = []
    for label, les in ((0, np.zeros_like(lesions)), (1, lesions)):
        case = S.SyntheticCase(hu=hu, lungs=lungs, lesions=les, instances=les.astype(np.uint16),
                               spacing=(1.0, 1.0, 5.0), label=label)
        S.save_case(tmp_path / f"v{label}.npz", case, lungs, {"split": "train"})
        rows.append({"file": f"v{label}.npz", "split": "train", "label": label, "lesion_source": "pseudo"})
    (tmp_path / "index.json").write_text(json.dumps([dict(rows[0], lesion_source="labelled")] + rows[1:]))
    with pytest.raises(ValueError, match="lesions pseudo"):          # the scored slices' lesions: refused
        synthetic_cache(tmp_path, tmp_path / "cache")
    (tmp_path / "index.json").write_text(json.dumps(rows))
    data = synthetic_cache(tmp_path, tmp_path / "cache")
    assert data["y"].tolist() == [0.0] * 6 + [1.0, 1.0] and data["volume"].tolist() == [0] * 6 + [1, 1]
    assert len(list((tmp_path / "cache").glob("synthetic-train-*.npz"))) == 1
    again = synthetic_cache(tmp_path, tmp_path / "cache")            # read back from the cache
    np.testing.assert_array_equal(again["x"], data["x"])


def test_synthetic_fit_learns_the_lesion():
    """Figures of noise, synthetic slices whose positives carry a bright blob: the extra loss falls."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (8, 256, 256), dtype=np.uint8)
    y = np.array([0, 1] * 4, np.float32)
    sx = rng.integers(0, 60, (16, 256, 256), dtype=np.uint8)
    sy = np.array([0, 1] * 8, np.float32)
    for i in np.nonzero(sy)[0]:
        r, c = rng.integers(40, 150, 2)
        sx[i, r:r + 60, c:c + 60] += 160
    cfg = TrainConfig(pretrained="none", epochs=16, batch=8, crop=192, input_size=224, threads=1, synthetic=1.0,
                      lr=2e-3)
    fit(x, y, cfg, seed=0, say=lambda s: None, synth={"x": sx, "y": sy})
    losses = [e["synthetic_loss"] for e in cfg.log]
    assert len(losses) == 16 and np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses


@pytest.mark.parametrize("extra", [{}, {"guide": "squares"}], ids=["no slices", "with lesion guidance"])
def test_synthetic_refuses_what_it_cannot_train(extra):
    """The slices must be given, and the two extra terms are not combined."""
    x = np.zeros((4, 256, 256), np.uint8)
    y = np.array([0, 1, 0, 1], np.float32)
    cfg = TrainConfig(pretrained="none", epochs=1, batch=2, crop=192, input_size=224, synthetic=1.0,
                      lesion_guidance=1.0 if extra else 0.0)
    kwargs = {"synth": {"x": x, "y": y}, "guide": {"x": x, "mask": x}} if extra else {}
    with pytest.raises(ValueError, match="semi-synthetic"):
        fit(x, y, cfg, seed=0, say=lambda s: None, **kwargs)


def test_card_figure_script_rejects_a_bad_row(tmp_path):
    script = load_script("slice_resnet_card_figures")
    with pytest.raises(SystemExit) as stop:
        script.main(["--out", str(tmp_path), "--weights", "no-registry-given"])
    assert stop.value.code == 2 and not any(tmp_path.iterdir())


@pytest.mark.realdata
def test_card_figure_script_draws_every_case(shared_data, tmp_path):
    """One row (the shipped weights), three cases: a palette PNG, one row of panels."""
    from PIL import Image

    script = load_script("slice_resnet_card_figures")
    assert script.main(["--data", str(shared_data), "--out", str(tmp_path), "--slices", "0.jpg"]) == 0
    with Image.open(tmp_path / "gradcam-rows.png") as im:
        assert im.mode == "P" and im.width > 2 * im.height
