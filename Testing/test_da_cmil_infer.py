"""DA-CMIL inference (seed 004): a 2-D slice as a bag of lung patches and a CT volume as a bag of lung slices (or of
lung patches, for weights without a slice-bag network), their attention maps on the CT grid, the classifier
interface, and (shipped weights) what the model card measured."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.classifiers.da_cmil import bags
from CovidCTAnalysis.classifiers.da_cmil.infer import DACMILModel, classify_image, classify_volume, load_model
from CovidCTAnalysis.classifiers.da_cmil.model import DACMIL
from CovidCTAnalysis.classifiers.slice_resnet.infer import lung_slices
from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.models.registry import load_registry

REPO = Path(__file__).resolve().parents[1]
CARD_RESULTS = REPO / "Resources" / "Models" / "cards" / "da-cmil" / "heatmaps.json"


@pytest.fixture(scope="module")
def demo():
    from CovidCTAnalysis.demo import make_demo_ct

    return make_demo_ct(size=(96, 96, 24), seed=0)


@pytest.fixture(scope="module")
def random_model():
    """An untrained network: what is tested with it is the plumbing, not the decisions."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    return DACMILModel(net=DACMIL().eval(), device="cpu", version="test")


@pytest.fixture(scope="module")
def random_slice_model(random_model):
    """The same with a slice-bag network for volumes (slices seen at 64 px to keep the test fast)."""
    import torch

    torch.manual_seed(1)
    return DACMILModel(net=random_model.net, device="cpu", version="test", slices=DACMIL().eval(), slice_size=64)


@pytest.fixture(scope="module")
def shipped():
    if "da-cmil" not in load_registry().entries:
        pytest.skip("da-cmil is not registered")
    return load_model("cpu")


@pytest.mark.parametrize("kind", ["lung slices", "lung patches"])
def test_volume_is_one_bag_with_attention_per_slice_and_a_map_on_the_ct_grid(demo, random_model, random_slice_model,
                                                                              kind):
    model = random_slice_model if kind == "lung slices" else random_model
    result, maps = classify_volume(demo.image, demo.lungs, model=model)
    assert result["bag"] == kind
    if kind == "lung slices":
        assert result["instances"] == result["classified_slices"]
    else:
        assert result["instances"] >= result["classified_slices"]
    assert set(maps) == {"attention", "gradcam"}
    heat = maps["attention"]
    assert 0.0 <= result["probability"] <= 1.0
    assert result["label"] == ("COVID-19" if result["probability"] >= 0.5 else "non-COVID")
    zs = lung_slices(sitk.GetArrayFromImage(demo.lungs))
    assert result["lung_slices"] == len(zs)
    weights = result["slice_attention"]
    assert set(weights) <= set(zs.tolist()) and len(weights) == result["classified_slices"]
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)  # attention over every instance of the one bag
    assert set(result["top_slices"]) <= set(weights)
    assert max(weights, key=weights.get) == result["top_slices"][0]
    assert heat.GetSize() == demo.image.GetSize() and heat.GetOrigin() == demo.image.GetOrigin()
    h = sitk.GetArrayFromImage(heat)
    assert h.min() >= 0.0 and h.max() == pytest.approx(1.0, abs=1e-3)
    outside = np.ones(h.shape[0], bool)
    outside[zs] = False
    assert not h[outside].any()  # only lung slices carry attention
    g = sitk.GetArrayFromImage(maps["gradcam"])
    assert g.shape == h.shape and 0.0 <= g.min() and g.max() <= 1.0 + 1e-6 and not g[outside].any()


def test_volume_without_lung_is_refused(demo, random_model, random_slice_model):
    empty = sitk.Image(demo.lungs.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(demo.lungs)
    for model in (random_model, random_slice_model):
        with pytest.raises(InputError, match="lung"):
            classify_volume(demo.image, empty, model=model)


def _slice_ct(demo, z: int):
    """Slice z of the demo CT as a one-slice CTVolume in real HU, with its lung label map."""
    from CovidCTAnalysis.io import CTVolume

    image = demo.image[:, :, z:z + 1]
    lungs = demo.lungs[:, :, z:z + 1]
    return SimpleNamespace(image=image, is_2d=True, display_windowed=False, source=Path("slice.nrrd"),
                           kind=CTVolume.__name__), lungs


def test_slice_is_a_bag_of_its_lung_patches(demo, random_model):
    ct, lungs = _slice_ct(demo, 12)
    result, maps = classify_image(ct, lungs, model=random_model)
    heat = maps["attention"]
    expected = bags.slice_bag(sitk.GetArrayFromImage(ct.image)[0], sitk.GetArrayFromImage(lungs)[0])
    assert result["instances"] == len(expected) >= 1
    assert sum(result["patch_attention"]) == pytest.approx(1.0, abs=1e-3)
    h = sitk.GetArrayFromImage(heat)
    assert h.shape == (1, 96, 96) and h.max() == pytest.approx(1.0, abs=1e-3)
    rows, cols = expected.box
    outside = np.ones(h.shape[1:], bool)
    outside[rows, cols] = False
    assert not h[0][outside].any()  # the map stays inside the framed lung region
    from scipy import ndimage as ndi

    near_lungs = ndi.binary_dilation(sitk.GetArrayFromImage(lungs)[0] > 0, iterations=6)
    assert not h[0][~near_lungs].any()  # and inside the lungs and their margin (Fig. 8)


def test_slice_without_lung_is_refused_naming_the_file(demo, random_model, tmp_path):
    from CovidCTAnalysis.io import load_ct

    png = tmp_path / "abdomen.png"  # a body of soft tissue in air (lung window: grey 200 is about +25 HU), no lung
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    body = ((yy - 64) / 50) ** 2 + ((xx - 64) / 60) ** 2 <= 1
    Image.fromarray(np.where(body, rng.integers(195, 205, (128, 128)), 0).astype(np.uint8)).save(png)
    with pytest.raises(InputError, match="no lung found") as err:
        classify_image(load_ct(png), None, model=random_model)
    assert str(png) in str(err.value)


def test_system_behind_the_interface(demo, random_model):
    from CovidCTAnalysis.classifiers.da_cmil.system import DACMILClassifier
    from CovidCTAnalysis.classifiers.interface import Classifier

    system = DACMILClassifier(random_model)
    assert isinstance(system, Classifier) and system.inputs == ("slice", "volume")
    ct = SimpleNamespace(image=demo.image, is_2d=False, display_windowed=False, source=None)
    run = system.run(ct, demo.lungs)
    assert run.default_heatmap == "attention" and set(run.heatmaps) == {"attention", "gradcam"}
    assert run.heatmap.GetSize() == demo.image.GetSize()
    assert "slice_attention" in run.summary() and run.csv_columns()["instances"] == str(run.details["instances"])
    with pytest.raises(InputError, match="no lung"):
        system.run(ct, None)


def test_registered_entry_matches_the_shipped_weights(shipped):
    entry = load_registry().get("da-cmil")
    assert entry.check() == "ok" and entry.task == "classification"
    assert entry.input["instance_size"] == shipped.instance_size == bags.PATCH
    assert shipped.slices is not None and entry.input["slice_size"] == shipped.slice_size == bags.SLICE_SIZE
    assert entry.calibration["inputs"] == ["slice"]  # fitted on the patch network's 2-D predictions


@pytest.mark.realdata
def test_shipped_model_reproduces_the_cards_volume_results(shared_data, shipped):
    """The card's per-case results (scripts/evaluate_heatmaps.py --model da-cmil) for one COVID-19 Radiopaedia stack
    and one normal imlab thorax, run the way that script runs them (so card and weights belong together)."""
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lungs.select import segment_lungs
    from CovidCTAnalysis.pipeline.classifiers import run_classifier

    card = {c["case"]: c for c in json.loads(CARD_RESULTS.read_text(encoding="utf-8"))["volumes"]}
    imlab = sorted((shared_data / "imlab-lung3d").glob("id001*[0-9].nii.gz"))
    for name, path in (("radiopaedia 75329", shared_data / "radiopaedia-stacks" / "75329"),
                       ("imlab id001 (normal)", imlab[0] if imlab else None)):
        assert name in card and path is not None, name
        ct = load_ct(path)
        lungs = segment_lungs(ct.image, display_windowed=ct.display_windowed)
        run = run_classifier("da-cmil", ct, lungs, "cpu")
        assert run.probability == pytest.approx(card[name]["probability"], abs=2e-3), name
        assert run.details["top_slices"][0] in run.details["slice_attention"]


def test_in_pass_gradcam_equals_explain_gradcam_on_the_bag_logit(random_model):
    """The Grad-CAM computed in the classifying pass is explain.gradcam's on the network 'patches -> bag logit'."""
    import torch

    from CovidCTAnalysis.classifiers.da_cmil.train import instance_tensor
    from CovidCTAnalysis.explain.gradcam import gradcam_map, multiscale_gradcam

    rng = np.random.default_rng(1)
    patches = rng.random((5, bags.PATCH, bags.PATCH)).astype(np.float32)
    p, a, maps = random_model.bag(patches)

    class BagLogit(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x, [len(x)]).logits[:, None]

    x = instance_tensor(np.rint(patches * 255), bags.PATCH)
    res = multiscale_gradcam(BagLogit(random_model.net).eval(), x, ["net.project"],
                             select=lambda logits: torch.ones(1, dtype=torch.bool))
    expected = gradcam_map(res.activations["net.project"], res.gradients["net.project"])[:, 0].numpy()
    assert float(torch.sigmoid(res.logits[0, 0])) == pytest.approx(p, abs=1e-5)
    assert np.allclose(maps["gradcam"], expected, atol=1e-6 + 1e-4 * expected.max())
    assert np.allclose(maps["attention"].sum(axis=(1, 2)), a, atol=1e-5)


def test_folded_batchnorm_network_gives_the_same_bag_outputs(random_model):
    from CovidCTAnalysis.classifiers.da_cmil.infer import fused

    fast = DACMILModel(net=fused(random_model.net), device="cpu", version="test")
    patches = np.random.default_rng(2).random((6, bags.PATCH, bags.PATCH)).astype(np.float32)
    p, a, maps = random_model.bag(patches)
    q, b, fast_maps = fast.bag(patches)
    assert q == pytest.approx(p, abs=1e-4) and np.allclose(a, b, atol=1e-4)
    for method in maps:
        assert np.allclose(maps[method], fast_maps[method], atol=1e-3 * max(1e-6, maps[method].max())), method
