"""Model-randomization sanity check (Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018, §3.1) of every
explanation method: the maps of the shipped slice-resnet on a chest slice must differ from the maps of the same
architecture with freshly initialized weights. A method whose map survives randomization shows the input, not what
the model learned. Similarity = Spearman rank correlation of the maps pooled to 56 x 56 (ties and pixel noise
averaged out); the same network explained twice must correlate perfectly, the randomized one must not."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from CovidCTAnalysis.explain import METHODS

RANDOMIZED_MAX_RHO = 0.5


@pytest.fixture(scope="module")
def setup():
    from CovidCTAnalysis.classifiers.slice_resnet import inputs, load_model
    from CovidCTAnalysis.classifiers.slice_resnet.model import backbone_of, build_model
    from CovidCTAnalysis.demo import make_demo_ct

    demo = make_demo_ct(size=(128, 128, 24), seed=0)
    hu, lungs = sitk.GetArrayFromImage(demo.image), sitk.GetArrayFromImage(demo.lungs)
    z = int(np.argmax((lungs > 0).sum(axis=(1, 2))))
    x = inputs.to_tensor(inputs.square_from_hu(hu[z], inputs.lung_roi(lungs))[None])
    trained = load_model("cpu").net
    torch.manual_seed(0)
    randomized = build_model(backbone_of(trained.state_dict())).eval()
    bounds = (-inputs.MEAN / inputs.STD, (1 - inputs.MEAN) / inputs.STD)
    return x, trained, randomized, bounds


def _options(method: str, net, bounds) -> dict:
    from CovidCTAnalysis.classifiers.slice_resnet.model import feature_layer, gradcam_layers

    return {"cam": {"layer": feature_layer(net)}, "gradcam": {"layers": gradcam_layers(net)},
            "lrp": {"bounds": bounds}}[method]


def _rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    from scipy.stats import spearmanr

    pa = torch.nn.functional.avg_pool2d(a.float(), 4).flatten().numpy()
    pb = torch.nn.functional.avg_pool2d(b.float(), 4).flatten().numpy()
    if pa.std() == 0 or pb.std() == 0:
        return 0.0
    return float(spearmanr(pa, pb)[0])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_maps_change_when_the_weights_are_randomized(method, setup):
    x, trained, randomized, bounds = setup
    explain = METHODS[method]
    first = explain(trained, x, 0, **_options(method, trained, bounds))
    again = explain(trained, x, 0, **_options(method, trained, bounds))
    random = explain(randomized, x, 0, **_options(method, randomized, bounds))
    assert first.shape == random.shape == (1, 1) + tuple(x.shape[2:])
    assert _rank_correlation(first, again) > 0.99
    rho = _rank_correlation(first, random)
    assert rho < RANDOMIZED_MAX_RHO, f"{method}: rank correlation {rho:.2f} with a randomized network"
