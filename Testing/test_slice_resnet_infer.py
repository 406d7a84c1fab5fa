"""slice-resnet inference with the shipped weights: a 2-D slice, a small demo CT, the registry entry, and (real data)
the validation AUC of the shipped model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.classifiers.slice_resnet import classify_image, classify_volume, explain_image, load_model
from CovidCTAnalysis.classifiers.slice_resnet.corona import corona_score_cm3
from CovidCTAnalysis.classifiers.slice_resnet.infer import lung_region, lung_slices
from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.models.registry import load_registry

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "Resources" / "Models" / "slice-resnet" / "slice-resnet-lite0-320.pt"
#: What scripts/evaluate_heatmaps.py measured for the shipped weights (the model card's numbers, per-slice results).
CARD_HEATMAPS = REPO / "Resources" / "Models" / "cards" / "slice-resnet" / "heatmaps-gradcam.json"


@pytest.fixture(scope="module")
def model():
    import torch

    torch.set_num_threads(1)  # one image at a time: 2 threads are several times slower on a busy 2-core machine
    return load_model("cpu")


@pytest.fixture(scope="module")
def demo():
    from CovidCTAnalysis.demo import make_demo_ct

    return make_demo_ct(size=(96, 96, 24), seed=0)


def test_registered_entry_matches_the_shipped_weights():
    entries = load_registry().entries
    if "slice-resnet" not in entries:
        pytest.skip("slice-resnet is not registered yet")
    entry = entries["slice-resnet"]
    assert entry.task == "classification"
    assert entry.check() == "ok"
    assert entry.weights.resolve() == WEIGHTS.resolve()


def test_classify_volume_on_the_demo_ct(demo, model):
    result, heat = classify_volume(demo.image, demo.lungs, "cpu", model=model)
    assert 0.0 <= result["probability"] <= 1.0
    assert result["label"] == ("COVID-19" if result["probability"] >= 0.5 else "non-COVID")
    expected_slices = lung_slices(sitk.GetArrayFromImage(demo.lungs))
    assert result["lung_slices"] == len(expected_slices)
    assert sorted(result["slice_probabilities"]) == expected_slices.tolist()

    assert heat.GetSize() == demo.image.GetSize()
    assert heat.GetSpacing() == demo.image.GetSpacing() and heat.GetOrigin() == demo.image.GetOrigin()
    assert heat.GetPixelID() == sitk.sitkFloat32
    h = sitk.GetArrayFromImage(heat)
    assert h.min() >= 0.0 and h.max() <= 1.0
    positive = np.zeros(h.shape[0], bool)
    for z, p in result["slice_probabilities"].items():
        positive[z] = p >= 0.5
    assert not h[~positive].any()  # maps only on positive slices
    assert result["positive_slices"] == int(positive.sum())
    voxel = float(np.prod(demo.image.GetSpacing()))
    assert result["corona_score_roi_cm3"] == pytest.approx(corona_score_cm3(h, positive, voxel))
    inside = lung_region(sitk.GetArrayFromImage(demo.lungs), demo.image.GetSpacing())
    assert result["corona_score_cm3"] == pytest.approx(corona_score_cm3(h * inside, positive, voxel))
    assert result["corona_score_cm3"] <= result["corona_score_roi_cm3"] + 1e-9

    again, heat2 = classify_volume(demo.image, demo.lungs, "cpu", model=model)
    assert again["probability"] == result["probability"]  # same input, same output
    assert np.array_equal(sitk.GetArrayFromImage(heat2), h)


def test_classify_volume_needs_lungs(demo, model):
    empty = sitk.Image(demo.lungs.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(demo.lungs)
    with pytest.raises(InputError, match="lung"):
        classify_volume(demo.image, empty, "cpu", model=model)


def _figure(demo, z: int, folder: Path) -> Path:
    """Slice z of the demo CT as a lung-window 8-bit figure with a 20 px black border."""
    hu = sitk.GetArrayFromImage(demo.image)[z]
    v = np.clip(np.rint((hu + 1350.0) / 1500.0 * 255.0), 0, 255).astype(np.uint8)
    png = folder / f"slice-{z}.png"
    Image.fromarray(np.pad(v, 20)).save(png)
    return png


def test_classify_image_on_a_figure(demo, model, tmp_path):
    from CovidCTAnalysis.io import load_ct

    ct = load_ct(_figure(demo, 12, tmp_path))
    result = classify_image(ct, "cpu", model=model)
    assert 0.0 <= result["probability"] <= 1.0
    assert result["framing"].startswith("whole figure")
    again, maps = explain_image(ct, "cpu", model=model, methods=("gradcam", "lrp"))
    assert again["probability"] == pytest.approx(result["probability"], abs=1e-5)
    assert set(maps) == {"gradcam", "lrp"}
    for heat in maps.values():
        assert heat.GetSize() == ct.image.GetSize()
        h = sitk.GetArrayFromImage(heat)
        assert 0.0 <= h.min() and h.max() <= 1.0
        assert not h[0, :20].any() and not h[0, :, :20].any()  # the trimmed border gets no heat
    with pytest.raises(InputError, match="volume"):
        classify_image(load_ct(_write_volume(demo, tmp_path)), "cpu", model=model)


def test_a_lung_focused_model_frames_a_figure_on_its_lungs_and_explains_only_there(demo, model, tmp_path):
    from CovidCTAnalysis.classifiers.slice_resnet.infer import image_lungs
    from CovidCTAnalysis.classifiers.slice_resnet.inputs import lung_roi
    from CovidCTAnalysis.io import load_ct

    ct = load_ct(_figure(demo, 12, tmp_path))
    found = image_lungs(ct)  # lungs-unet on the figure
    truth = np.pad(sitk.GetArrayFromImage(demo.lungs)[12] > 0, 20)
    assert found is not None and found.shape == truth.shape
    assert 2 * (found & truth).sum() / (found.sum() + truth.sum()) > 0.8

    focused = dataclasses.replace(model, lung_focus=True)
    result, maps = explain_image(ct, "cpu", model=focused, methods=("gradcam",))
    assert result["framing"] == "lung ROI, lungs in focus"
    assert result["probability"] != pytest.approx(classify_image(ct, "cpu", model=model)["probability"], abs=1e-6)
    heat = sitk.GetArrayFromImage(maps["gradcam"])[0]
    rows, cols = lung_roi(found)
    outside = np.ones(heat.shape, bool)
    outside[rows, cols] = False
    assert heat.max() > 0 and not heat[outside].any()


def test_a_lung_focused_model_sees_other_inputs_on_a_volume(demo, model):
    focused = dataclasses.replace(model, lung_focus=True)
    plain, _ = classify_volume(demo.image, demo.lungs, "cpu", model=model)
    seen, _ = classify_volume(demo.image, demo.lungs, "cpu", model=focused)
    assert seen["lung_slices"] == plain["lung_slices"]
    assert seen["slice_probabilities"] != plain["slice_probabilities"]


def test_a_model_registered_at_another_input_size_is_given_inputs_of_that_size(demo, model, tmp_path, monkeypatch):
    """A network trained with --input-size N is registered with input size [N, N]: the loader reads it (320 for the
    shipped weights), the squares are cut at inputs.cache_size(N) and the network sees N px; its maps come back on the
    CT grid."""
    from CovidCTAnalysis.classifiers.slice_resnet import infer, inputs
    from CovidCTAnalysis.io import load_ct

    entry = load_registry().get("slice-resnet")
    assert infer._load("cpu", None).input_size == entry.input["size"][0] == 320
    larger = dataclasses.replace(model, input_size=384)
    assert larger.square_size == inputs.cache_size(384) == 432
    seen = []
    real = inputs.to_tensor
    monkeypatch.setattr(inputs, "to_tensor", lambda sq, size=inputs.INPUT_SIZE: seen.append(
        (np.asarray(sq).shape[-1], size)) or real(sq, size))
    ct = load_ct(_figure(demo, 12, tmp_path))
    result, maps = explain_image(ct, "cpu", model=larger, methods=("gradcam", "lrp"))
    assert set(seen) == {(432, 384)}
    assert result["probability"] != pytest.approx(classify_image(ct, "cpu", model=model)["probability"], abs=1e-6)
    assert all(m.GetSize() == ct.image.GetSize() for m in maps.values())
    seen.clear()
    volume, heat = classify_volume(demo.image, demo.lungs, "cpu", model=larger)
    assert set(seen) == {(432, 384)} and heat.GetSize() == demo.image.GetSize()
    from CovidCTAnalysis.classifiers.slice_resnet.explain import gradcam_figure, gradient_weighted_features

    seen.clear()  # the researcher's report (§3.3 features, Fig. 2) feeds the network its own size too
    hu = sitk.GetArrayFromImage(demo.image)
    squares = np.stack([inputs.square_from_hu(hu[z], size=larger.square_size) for z in (10, 14)])
    gradient_weighted_features(larger, squares)
    gradcam_figure(larger, squares, ["a", "b"], tmp_path / "fig2.png")
    assert set(seen) == {(432, 384)}


@pytest.mark.parametrize("stored, seen", [(224, 224), (None, 320)], ids=["trained at 224 px", "2.0.0-style file"])
def test_a_users_weights_are_given_the_input_size_they_were_trained_at(stored, seen, tmp_path, monkeypatch):
    """The weights carry their input size (model.with_input_size): a user's file trained with --input-size 224 runs at
    224 px though the registry says 320; a file without it (2.0.0's trainer) runs at the registry's size."""
    import torch

    from CovidCTAnalysis.classifiers.slice_resnet import infer
    from CovidCTAnalysis.models import user_weights

    state = torch.load(load_registry().get("slice-resnet").weights, weights_only=True)
    assert int(state.pop("input_size")) == load_registry().get("slice-resnet").input["size"][0] == 320
    if stored is not None:
        state["input_size"] = torch.tensor(stored)
    mine = tmp_path / "my-slice-resnet.pt"
    torch.save(state, mine)
    monkeypatch.setenv(user_weights.ENV, f"slice-resnet={mine}")
    loaded = infer._load("cpu", None)
    assert loaded.input_size == seen and "+user." in loaded.version


def _write_volume(demo, folder: Path) -> Path:
    path = folder / "ct.nrrd"
    sitk.WriteImage(demo.image, str(path))
    return path


@pytest.mark.realdata
def test_shipped_model_reproduces_the_cards_heatmap_evaluation(shared_data, tmp_path):
    """The shipped weights, run as scripts/evaluate_heatmaps.py runs them, give the card's per-slice probabilities
    and pointing-game hits on the first COVID-SemiSeg labelled slices (so card and weights belong together)."""
    from CovidCTAnalysis.evaluation.heatmaps import pointing_hit
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lesions.semiseg import to_display
    from CovidCTAnalysis.pipeline.classifiers import run_classifier

    card = json.loads(CARD_HEATMAPS.read_text(encoding="utf-8"))["semiseg"]["cases"][:6]
    folder = shared_data / "covid-semiseg" / "TrainingSet" / "LungInfection-Train" / "Doctor-label"
    for case in card:
        stem = Path(case["slice"]).stem
        with Image.open(folder / "Imgs" / case["slice"]) as im:
            gray = to_display(np.asarray(im.convert("L")), case["slice"])
        with Image.open(folder / "GT" / f"{stem}.png") as im:
            mask = to_display(np.asarray(im.convert("L")) > 127, case["slice"])
        png = tmp_path / f"{stem}.png"
        Image.fromarray(gray).save(png)
        run = run_classifier("slice-resnet", load_ct(png), None, "cpu")
        assert run.probability == pytest.approx(case["probability"], abs=2e-3), case["slice"]
        heat = sitk.GetArrayFromImage(run.heatmap)[0]
        assert int(pointing_hit(heat, mask)) == case["hit"], case["slice"]


@pytest.mark.realdata
def test_radiopaedia_stack_gets_positive_slices_and_a_corona_score(shared_data, model):
    """A COVID-19 case (Radiopaedia 75329_2): measured case P 0.861, 25 of 36 lung slices positive, Corona score 0.15
    cm3 inside the lungs (model card); a Corona score of 0 inside the lungs would mean no activation on the disease.
    (2.1.0 scores 0 inside the lungs on four of the seven COVID-19 chest stacks, 75329 among them; the card says so.)"""
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lungs import segment_lungs_classic

    ct = load_ct(shared_data / "radiopaedia-stacks" / "75329_2")
    lungs = segment_lungs_classic(ct.image, display_windowed=True)
    result, heat = classify_volume(ct.image, lungs, "cpu", model=model)
    assert result["label"] == "COVID-19"
    assert result["positive_slices"] >= 5
    h = sitk.GetArrayFromImage(heat)
    positive = np.zeros(h.shape[0], bool)
    for z, p in result["slice_probabilities"].items():
        positive[z] = p >= 0.5
    assert positive.sum() == result["positive_slices"]
    assert h[positive].max() > 0.6 and not h[~positive].any()
    assert 0 < result["corona_score_roi_cm3"]
    assert 0 < result["corona_score_cm3"] <= result["corona_score_roi_cm3"]


def test_system_runs_a_volume_with_gradcam_and_lrp(demo, model):
    """Behind the classifier interface: Grad-CAM is the default map, LRP lies on the same (positive) slices."""
    from CovidCTAnalysis.classifiers.interface import Classifier
    from CovidCTAnalysis.classifiers.slice_resnet.system import SliceResNetClassifier

    system = SliceResNetClassifier(model)
    assert isinstance(system, Classifier)
    ct = SimpleNamespace(image=demo.image, is_2d=False, display_windowed=False)  # what run reads of a CTVolume
    run = system.run(ct, demo.lungs)
    assert run.default_heatmap == "gradcam" and set(run.heatmaps) == {"gradcam", "lrp"}
    gradcam, lrp = (sitk.GetArrayFromImage(run.heatmaps[m]) for m in ("gradcam", "lrp"))
    assert lrp.shape == gradcam.shape and 0.0 <= lrp.min() and lrp.max() <= 1.0
    covered = gradcam.reshape(len(gradcam), -1).any(axis=1)
    assert not lrp[~covered].any()  # LRP only where the Grad-CAM heatmap is: the positive lung slices
    if covered.any():
        assert lrp.max() > 0  # relevance on the explained slices (its peak shrinks when resized onto a small ROI)
    assert run.details["lung_slices"] > 0 and run.version == model.version


def test_thin_slices_are_classified_2_5_mm_apart_and_lend_to_their_nearest_neighbours():
    from CovidCTAnalysis.classifiers.slice_resnet.infer import sampled_slices

    picked, owner = sampled_slices(7, 1.0)  # every second slice
    assert picked.tolist() == [0, 2, 4, 6]
    assert owner.tolist() == [0, 0, 1, 2, 2, 2, 3]  # rint: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2
    assert all(abs(picked[o] - i) <= 1 for i, o in enumerate(owner))
    picked, owner = sampled_slices(5, 0.625)  # every fourth
    assert picked.tolist() == [0, 4] and owner.tolist() == [0, 0, 0, 1, 1]
    picked, owner = sampled_slices(4, 5.0)  # thick slices: every one, as the paper
    assert picked.tolist() == [0, 1, 2, 3] and owner.tolist() == [0, 1, 2, 3]


def test_relevance_map_keeps_positive_relevance_smoothed_and_scaled_over_all_slices():
    from CovidCTAnalysis.explain.heatmap import relevance_heatmap

    relevance = np.zeros((2, 9, 9), np.float32)
    relevance[0, 4, 4], relevance[1, 2, 2], relevance[1, 6, 6] = 2.0, 4.0, -9.0
    heat = relevance_heatmap(relevance, smooth_px=1.0)
    assert heat.max() == pytest.approx(1.0) and heat.min() >= 0.0
    assert heat[1, 2, 2] == pytest.approx(1.0) and heat[0, 4, 4] == pytest.approx(0.5, abs=1e-6)  # one scale
    assert heat[1, 6, 6] < 1e-6  # negative relevance is not shown
    assert 0 < heat[0, 4, 5] < heat[0, 4, 4]  # smoothed
    assert not relevance_heatmap(-np.ones((1, 3, 3))).any()

