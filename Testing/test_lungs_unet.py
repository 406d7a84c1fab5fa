"""segment_lungs_unet with the shipped lungs-unet: labels and sides on a demo CT, batching, registry, real data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.lungs import segment_lungs_unet
from CovidCTAnalysis.lungs.evaluate import dice

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "Resources" / "Models" / "lungs-unet" / "lungs-unet.pt"


def _temporary_registry(folder: Path, weights: Path, sha256: str) -> Path:
    path = folder / "registry.json"
    path.write_text(json.dumps({"schema": 1, "models": [{
        "name": "lungs-unet", "version": "test", "task": "lung-segmentation", "weights": str(weights),
        "sha256": sha256, "input": {}, "card": None}]}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def net():
    """The registered lungs-unet (its sha256 verified by the registry)."""
    from CovidCTAnalysis.lungs.unet import load_network

    return load_network("cpu")


@pytest.fixture(scope="module")
def small_demo():
    from CovidCTAnalysis.demo import make_demo_ct

    return make_demo_ct(size=(128, 128, 32), seed=11)  # seeds 3-10 trained the model, 0-2 evaluate it


def _right_is_low_x(labels: np.ndarray) -> bool:
    return np.nonzero(labels == 1)[2].mean() < np.nonzero(labels == 2)[2].mean()


def test_labels_and_sides_on_a_small_demo_ct(net, small_demo):
    out = segment_lungs_unet(small_demo.image, net=net)
    assert out.GetSize() == small_demo.image.GetSize()
    assert out.GetSpacing() == small_demo.image.GetSpacing() and out.GetOrigin() == small_demo.image.GetOrigin()
    labels = sitk.GetArrayFromImage(out)
    truth = sitk.GetArrayFromImage(small_demo.lungs)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 1, 2}
    assert _right_is_low_x(labels)                                   # label 1 = patient's right = low x (LPS)
    assert dice(labels > 0, truth > 0) > 0.93
    assert dice(labels == 1, truth == 1) > 0.9 and dice(labels == 2, truth == 2) > 0.9


def test_batching_bounds_memory_not_the_result(net, small_demo):
    image = small_demo.image[:, :, 10:22]          # 12 slices: every slice seen at 1 mm spacing along z below
    image.SetSpacing((*small_demo.image.GetSpacing()[:2], 1.0))
    one = sitk.GetArrayFromImage(segment_lungs_unet(image, net=net, batch=64))
    small = sitk.GetArrayFromImage(segment_lungs_unet(image, net=net, batch=3))
    assert one.any() and np.array_equal(one, small)
    every = sitk.GetArrayFromImage(segment_lungs_unet(image, net=net, batch=3, z_step_mm=0))
    assert dice(every > 0, one > 0) > 0.97                          # slices sampled 2 mm apart, interpolated


def test_a_single_slice(net, small_demo):
    arr = sitk.GetArrayFromImage(small_demo.image)
    truth = sitk.GetArrayFromImage(small_demo.lungs)
    z = int(np.argmax((truth > 0).sum(axis=(1, 2))))
    image = sitk.GetImageFromArray(arr[z:z + 1])
    image.SetSpacing(small_demo.image.GetSpacing())
    labels = sitk.GetArrayFromImage(segment_lungs_unet(image, net=net))
    assert labels.shape == (1,) + arr.shape[1:]
    assert _right_is_low_x(labels)
    assert dice(labels > 0, truth[z:z + 1] > 0) > 0.9


def test_no_lungs_is_an_input_error(net):
    image = sitk.GetImageFromArray(np.full((8, 64, 64), 40.0, np.float32))   # soft tissue only
    with pytest.raises(InputError, match="no lungs found"):
        segment_lungs_unet(image, net=net)


def test_weights_load_through_a_registry_entry_and_are_verified(tmp_path):
    import torch

    from CovidCTAnalysis.lungs.unet import load_network
    from CovidCTAnalysis.models.registry import ModelIntegrityError, load_registry, sha256_file

    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size < 10 * 1024 * 1024
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    reg = load_registry(_temporary_registry(tmp_path, WEIGHTS, sha256_file(WEIGHTS)))
    loaded = load_network("cpu", registry=reg)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, state[k].float() if state[k].is_floating_point() else state[k])
    altered = tmp_path / "altered.pt"
    shutil.copy(WEIGHTS, altered)
    with open(altered, "r+b") as f:      # flip one byte near the end (inside the tensor data)
        f.seek(-100, 2)
        b = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([b[0] ^ 0xFF]))
    bad = load_registry(_temporary_registry(tmp_path, altered, sha256_file(WEIGHTS)))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_network("cpu", registry=bad)


def test_real_imlab_volume(net, shared_data):
    from CovidCTAnalysis.io import load_ct, read_canonical

    folder = shared_data / "imlab-lung3d"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    ct = load_ct(folder / "id001-128x128x64.nii.gz")
    ref = sitk.GetArrayFromImage(read_canonical(folder / "id001-128x128x64-msk.nii.gz")) > 127
    labels = sitk.GetArrayFromImage(segment_lungs_unet(ct.image, net=net))
    assert _right_is_low_x(labels)
    assert dice(labels > 0, ref) > 0.97
