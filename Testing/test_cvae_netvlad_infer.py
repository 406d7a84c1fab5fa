"""iCovid inference (seed 000): a CT volume as one case of its lung slices every 3 mm, a 2-D slice, the LRP-CMP map on
the CT grid, the classifier interface (lesions from the pipeline), refusals, and the registered weights."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.classifiers.cvae_netvlad.branches import FrozenTrunk
from CovidCTAnalysis.classifiers.cvae_netvlad.classifier import CVAENetVLAD, FullNetwork
from CovidCTAnalysis.classifiers.cvae_netvlad.infer import (REFINED_SLICES, CVAENetVLADModel, classify_image,
                                                            classify_volume, load_model)
from CovidCTAnalysis.classifiers.slice_resnet.infer import lung_slices
from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.models.registry import load_registry


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
    return CVAENetVLADModel(net=FullNetwork(CVAENetVLAD(), FrozenTrunk(pretrained=False)).eval(), device="cpu",
                            version="test")


def test_volume_is_one_case_with_a_map_on_the_ct_grid(demo, random_model):
    result, maps = classify_volume(demo.image, demo.lungs, demo.lesions, model=random_model)
    heat = maps["lrp"]
    assert 0.0 <= result["probability"] <= 1.0
    assert result["label"] == ("COVID-19" if result["probability"] >= 0.5 else "non-COVID")
    zs = lung_slices(sitk.GetArrayFromImage(demo.lungs))
    assert result["lung_slices"] == len(zs)
    step = max(1, int(3.0 // demo.image.GetSpacing()[2]))
    assert result["classified_slices"] == len(range(0, len(zs), step))
    assert set(result["refined_slices"]) <= set(result["slice_relevance"]) and \
        len(result["refined_slices"]) == min(REFINED_SLICES, result["classified_slices"])
    assert 0.0 <= result["relevance_in_lungs"] <= 1.0
    assert heat.GetSize() == demo.image.GetSize() and heat.GetOrigin() == demo.image.GetOrigin()
    h = sitk.GetArrayFromImage(heat)
    assert h.min() >= 0.0 and h.max() <= 1.0 + 1e-6
    outside = np.ones(h.shape[0], bool)
    outside[zs] = False
    assert not h[outside].any()  # only lung slices carry relevance


def test_volume_without_lung_is_refused(demo, random_model):
    empty = sitk.Image(demo.lungs.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(demo.lungs)
    with pytest.raises(InputError, match="lung"):
        classify_volume(demo.image, empty, demo.lesions, model=random_model)


def _slice_ct(demo, z: int):
    from CovidCTAnalysis.io import CTVolume

    return (SimpleNamespace(image=demo.image[:, :, z:z + 1], is_2d=True, display_windowed=False,
                            source=Path("slice.nrrd"), kind=CTVolume.__name__),
            demo.lungs[:, :, z:z + 1], demo.lesions[:, :, z:z + 1])


def test_slice_map_stays_near_the_lungs(demo, random_model):
    ct, lungs, lesions = _slice_ct(demo, 12)
    result, maps = classify_image(ct, lungs, lesions, model=random_model)
    h = sitk.GetArrayFromImage(maps["lrp"])
    assert h.shape == (1, 96, 96) and 0.0 <= h.min() and h.max() <= 1.0 + 1e-6
    assert "log_odds" in result and 0.0 <= result["probability"] <= 1.0
    from scipy import ndimage as ndi

    near_lungs = ndi.binary_dilation(sitk.GetArrayFromImage(lungs)[0] > 0, iterations=6)
    assert not h[0][~near_lungs].any()


def test_slice_without_lung_is_refused_naming_the_file(random_model, tmp_path):
    from CovidCTAnalysis.io import load_ct

    png = tmp_path / "abdomen.png"  # soft tissue in air, no lung
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    body = ((yy - 64) / 50) ** 2 + ((xx - 64) / 60) ** 2 <= 1
    Image.fromarray(np.where(body, rng.integers(195, 205, (128, 128)), 0).astype(np.uint8)).save(png)
    with pytest.raises(InputError, match="no lung found") as err:
        classify_image(load_ct(png), None, model=random_model)
    assert str(png) in str(err.value)


def test_system_takes_the_pipelines_lesions(demo, random_model):
    from CovidCTAnalysis.classifiers.cvae_netvlad.system import CVAENetVLADClassifier
    from CovidCTAnalysis.classifiers.interface import Classifier

    system = CVAENetVLADClassifier(random_model)
    assert isinstance(system, Classifier) and system.inputs == ("slice", "volume") and system.needs_lesions
    ct = SimpleNamespace(image=demo.image, is_2d=False, display_windowed=False, source=None)
    run = system.run(ct, demo.lungs, lesions=demo.lesions)
    assert run.default_heatmap == "lrp" and run.heatmap.GetSize() == demo.image.GetSize()
    assert "slice_relevance" in run.summary() and "log_odds" in run.csv_columns()
    with pytest.raises(InputError, match="no lung"):
        system.run(ct, None)


def test_registered_entry_matches_the_shipped_weights():
    if "cvae-netvlad" not in load_registry().entries:
        pytest.skip("cvae-netvlad is not registered")
    entry = load_registry().get("cvae-netvlad")
    assert entry.check() == "ok" and entry.task == "classification" and entry.explanation.startswith("LRP")
    model = load_model("cpu")
    assert model.net.classifier.encoder.side is not None  # the full model ships


def test_side_information_on_a_picture_keeps_the_rule_the_weights_were_trained_with(demo):
    """On a picture the side information is lesions-unet's four-turn arg-max (inputs.PICTURE_LESIONS), whatever the
    caller passes and whatever lesions-unet's own picture rule is; on a volume the caller's map is used as given."""
    from CovidCTAnalysis.classifiers.cvae_netvlad.infer import _lesion_labels
    from CovidCTAnalysis.lesions import segment_lesions

    arr = sitk.GetArrayFromImage(demo.image)
    z = int(np.argmax((sitk.GetArrayFromImage(demo.lesions) > 0).sum(axis=(1, 2))))
    picture = sitk.GetImageFromArray(arr[z:z + 1])
    everything = sitk.GetImageFromArray(np.ones(arr[z:z + 1].shape, np.uint8))
    everything.CopyInformation(picture)
    side = _lesion_labels(picture, None, everything, True, "cpu")
    expected = sitk.GetArrayFromImage(segment_lesions(picture, display_windowed=True, picture_tta="rot4",
                                                      picture_rule=None))
    assert np.array_equal(side, expected) and side.any() and not side.all()
    assert not np.array_equal(side, sitk.GetArrayFromImage(segment_lesions(picture, display_windowed=True)))
    volume_lesions = sitk.GetImageFromArray(np.ones(arr.shape, np.uint8))
    volume_lesions.CopyInformation(demo.image)
    assert _lesion_labels(demo.image, None, volume_lesions, False, "cpu").all()
