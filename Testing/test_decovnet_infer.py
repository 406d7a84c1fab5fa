"""DeCoVNet inference with the shipped weights on a small generated chest CT (seed 002, §II-E, §II-G)."""

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.classifiers.decovnet import classify_volume, load_model
from CovidCTAnalysis.demo import make_demo_ct
from CovidCTAnalysis.models import select_device

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "Resources" / "Models" / "decovnet" / "decovnet.pt"
#: The input grid the shipped weights were trained on (as in their registry entry and model card).
SHIPPED_INPUT = {"in_plane": [112, 168], "z_mm": 5.0, "lung_only": True, "mask_value": 0.1}


@pytest.fixture(scope="module")
def model():
    """The registered decovnet (its sha256 verified by the registry)."""
    return load_model(select_device("cpu"))


@pytest.fixture(scope="module")
def demo_pair():
    sick = make_demo_ct(size=(128, 128, 48), seed=0)
    healthy = make_demo_ct(size=(128, 128, 48), seed=0, lesions=False)
    return sick, healthy


def test_weights_input_grid(model):
    assert model.spec.to_dict() == SHIPPED_INPUT


def test_classify_demo_ct(model, demo_pair):
    sick, _ = demo_pair
    events = []
    result, heatmap, loc = classify_volume(sick.image, sick.lungs, model.device,
                                           lambda f, m: events.append(f), model=model)
    p = result["probability"]
    assert 0.0 <= p <= 1.0
    assert result["label"] == ("COVID-19" if p >= 0.5 else "non-COVID")
    assert events[-1] == 1.0 and events == sorted(events)
    # heatmap: float32 0..1 on the canonical grid of the CT
    assert heatmap.GetSize() == sick.image.GetSize() and heatmap.GetSpacing() == sick.image.GetSpacing()
    assert heatmap.GetOrigin() == sick.image.GetOrigin() and heatmap.GetPixelID() == sitk.sitkFloat32
    h = sitk.GetArrayFromImage(heatmap)
    assert h.min() >= 0.0 and h.max() <= 1.0
    # the model grid: lung range at 5 mm, 112 x 168
    assert result["input_grid"][:2] == [168, 112]
    if loc is None:  # negative, or positive without a CAM region that overlaps R_3dcc (§II-E finds none then)
        assert result["localization"] is None
    else:
        assert p >= 0.5
        mask = sitk.GetArrayFromImage(loc["mask"])
        assert loc["mask"].GetSize() == sick.image.GetSize() and set(np.unique(mask)) <= {0, 1} and mask.any()
        lungs = sitk.GetArrayFromImage(sick.lungs) > 0
        assert (mask.astype(bool) & lungs).sum() / mask.sum() > 0.9  # the lesion segment lies in the lungs
        index = sick.image.TransformPhysicalPointToIndex(loc["centre_mm"])
        assert all(0 <= i < s for i, s in zip(index, sick.image.GetSize()))
        assert result["localization"]["centre_mm"] == list(loc["centre_mm"])


def test_same_input_same_output(model, demo_pair):
    sick, _ = demo_pair
    a, ha, _ = classify_volume(sick.image, sick.lungs, model.device, model=model)
    b, hb, _ = classify_volume(sick.image, sick.lungs, model.device, model=model)
    assert a["probability"] == b["probability"]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ha), sitk.GetArrayFromImage(hb))


@pytest.mark.realdata
def test_radiopaedia_stack_reproduces_the_reported_probability(model, shared_data):
    """A real slice stack through load_ct, lungs-classic and classify_volume: the heatmap lies on the stack's grid,
    a lesion is localized only when the volume is called positive, and P(COVID-19) is the one the training log
    (and the model card) report for this stack."""
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lungs import segment_lungs_classic

    stack = "74880"
    ct = load_ct(shared_data / "radiopaedia-stacks" / stack)
    lungs = segment_lungs_classic(ct.image, display_windowed=ct.display_windowed)
    result, heatmap, loc = classify_volume(ct.image, lungs, model.device, model=model)
    assert heatmap.GetSize() == ct.image.GetSize()
    assert (result["probability"] >= 0.5) == (result["label"] == "COVID-19")
    assert loc is None or result["label"] == "COVID-19"  # localized only when called positive
    if loc is not None:
        mask = sitk.GetArrayFromImage(loc["mask"]).astype(bool)
        assert (mask & (sitk.GetArrayFromImage(lungs) > 0)).sum() / mask.sum() > 0.9
    log = json.loads(WEIGHTS.with_suffix(".json").read_text(encoding="utf-8"))
    reported = {c["name"]: c["probability"] for c in log["real"]["cases"]}
    assert result["probability"] == pytest.approx(reported[stack], abs=1e-4)


def test_system_returns_cam_and_the_localized_lesion(model, demo_pair):
    """Behind the classifier interface: the CAM is the default map; a localized lesion is a segment and a point."""
    from types import SimpleNamespace

    from CovidCTAnalysis.classifiers.decovnet.system import DeCoVNetClassifier
    from CovidCTAnalysis.classifiers.interface import Classifier

    sick, _ = demo_pair
    system = DeCoVNetClassifier(model)
    assert isinstance(system, Classifier)
    run = system.run(SimpleNamespace(image=sick.image, is_2d=False), sick.lungs)
    result, heatmap, loc = classify_volume(sick.image, sick.lungs, model.device, model=model)
    assert run.probability == result["probability"] and run.default_heatmap == "cam"
    assert np.array_equal(sitk.GetArrayFromImage(run.heatmap), sitk.GetArrayFromImage(heatmap))
    if loc is None:
        assert not run.segments and not run.points
    else:
        mask, segment = run.segments["localization"]
        assert np.array_equal(sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(loc["mask"]))
        assert run.points["lesion_centre"] == tuple(loc["centre_mm"]) and segment.label == 1


def test_backbone_map_is_gradcam_of_the_covid_evidence(model, demo_pair):
    """§III-D reads the map on "the deep feature before the progressive classifier": the ResBlocks' output, weighted
    by the mean gradient of the COVID-19 evidence (Grad-CAM). Equal to captum's LayerGradCam of the same score."""
    import torch
    from captum.attr import LayerGradCam

    from CovidCTAnalysis.classifiers.decovnet import inputs
    from CovidCTAnalysis.classifiers.decovnet.infer import COVID_EVIDENCE

    sick, _ = demo_pair
    x_in = inputs.prepare(sick.image, sick.lungs, model.spec)
    p_classifier, cam = model.run(x_in.array, cam_layer="classifier")
    p_backbone, grad_map = model.run(x_in.array, cam_layer="backbone")
    assert p_classifier == p_backbone and grad_map.shape == cam.shape == x_in.array.shape[1:]
    assert 0.0 <= grad_map.min() and grad_map.max() <= 1.0

    x = torch.as_tensor(inputs.encode(x_in.array, model.spec))[None].contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        backbone = model.net.backbone(x)
    _, ours = model._backbone_gradcam(backbone)

    class Evidence(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, inp):
            return (self.net(inp) * torch.tensor(COVID_EVIDENCE)).sum(dim=1, keepdim=True)

    wrapped = Evidence(model.net)
    reference = LayerGradCam(wrapped, model.net.backbone).attribute(x, target=0, relu_attributions=True)
    reference = reference[0, 0].detach().numpy()
    reference = reference / reference.max() if reference.max() > 0 else reference
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    with pytest.raises(ValueError):
        model.run(x_in.array, cam_layer="normgrad")
