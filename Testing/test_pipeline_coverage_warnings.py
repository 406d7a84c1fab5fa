"""`covidct analyze` says what a CT cannot support instead of reporting it silently (pipeline/coverage.py).

Pixels coarser than lesions-unet was trained on (its card: over 2 mm) make its lesions several times too large: the
report's ``warnings`` say so and the numbers stay as measured. A scan that holds only part of the lungs (a few slices
through mid-lung or the apex) keeps its % involvement but gets no severity band, with a warning; the whole demo CT is
still graded.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.io import load_ct
from CovidCTAnalysis.models import load_registry
from CovidCTAnalysis.pipeline.coverage import (EDGE_LUNG_FRACTION, LESIONS_UNET_MAX_PIXEL_MM, MIN_LUNG_HEIGHT_MM,
                                               PARTIAL_LUNGS_NOT_GRADED, coarse_pixel_warning,
                                               partial_lungs_warning)
from CovidCTAnalysis.pipeline.lungs import find_lungs

FINE, COARSE = (256, 256, 16), (128, 128, 16)  # the demo's 350 mm field of view: 1.37 mm and 2.73 mm pixels


def _demo(folder: Path, size) -> Path:
    from CovidCTAnalysis.demo import make_demo_ct

    path = folder / f"demo-{size[0]}.nrrd"
    sitk.WriteImage(make_demo_ct(size=size, seed=0).image, str(path))
    return path


def _lung_slices(path: Path) -> np.ndarray:
    """Lung voxels per canonical axial slice (index 0 at the bottom)."""
    lung = sitk.GetArrayFromImage(find_lungs(load_ct(path), "lungs-classic").labels) > 0
    return lung.reshape(lung.shape[0], -1).sum(1)


def _crop(path: Path, first: int, count: int, out: Path) -> Path:
    image = sitk.ReadImage(str(path))
    sitk.WriteImage(sitk.RegionOfInterest(image, [*image.GetSize()[:2], count], [0, 0, first]), str(out))
    return out


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Path]:
    """The demo CT at 1.37 and 2.73 mm pixels, and the fine one cut to 3 slices through mid-lung and at the apex."""
    folder = tmp_path_factory.mktemp("coverage")
    fine, coarse = _demo(folder, FINE), _demo(folder, COARSE)
    per_slice = _lung_slices(fine)
    top = int(np.flatnonzero(per_slice)[-1])
    assert per_slice[0] == 0 and per_slice[-1] == 0, "the whole demo CT holds the whole lungs"
    return {"fine": fine, "coarse": coarse,
            "mid": _crop(fine, int(np.argmax(per_slice)) - 1, 3, folder / "mid.nrrd"),
            "apex": _crop(fine, top - 2, 3, folder / "apex.nrrd")}


# ---------------------------------------------------------------------------------------------- the checks alone

def test_pixels_over_the_cards_limit_warn_and_finer_ones_do_not(cases):
    assert LESIONS_UNET_MAX_PIXEL_MM == 2.0
    warning = coarse_pixel_warning(load_ct(cases["coarse"]), "lesions-unet")
    assert warning is not None
    assert "in-plane pixels of 2.73 mm" in warning and "lesions-unet" in warning and "(<= 2 mm)" in warning
    assert "several times too large" in warning
    assert coarse_pixel_warning(load_ct(cases["fine"]), "lesions-unet") is None


def test_a_picture_gets_no_pixel_warning(tmp_path):
    """A PNG's pixel size is assumed (350 mm over its width), not known: 128 pixels wide would read as 2.73 mm."""
    path = tmp_path / "small.png"
    y, x = np.mgrid[:128, :128]
    Image.fromarray(np.where((y - 64) ** 2 + (x - 64) ** 2 < 50 ** 2, 170, 90).astype(np.uint8)).save(path)
    ct = load_ct(path)
    assert ct.display_windowed and ct.spacing[0] > LESIONS_UNET_MAX_PIXEL_MM
    assert coarse_pixel_warning(ct, "lesions-unet") is None


def _fake_ct(lung: np.ndarray, spacing=(1.5, 1.5, 10.0)):
    """A CT stand-in and the label map of ``lung``: right lung (1) at x < 20, left (2) beyond."""
    labels = lung.astype(np.uint8)
    labels[..., 20:] *= 2
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(spacing)
    return SimpleNamespace(image=image, is_2d=False, display_windowed=False), image


def test_lungs_cut_at_an_end_or_too_short_warn_and_a_stray_voxel_does_not():
    lung = np.zeros((30, 40, 40), bool)
    lung[3:27, 5:35, 5:35] = True  # 240 mm of lung, clear of both ends
    assert partial_lungs_warning(*_fake_ct(lung)) is None
    lung[-1, 20, 20] = True  # one voxel in the top slice: far under EDGE_LUNG_FRACTION of a lung slice
    assert partial_lungs_warning(*_fake_ct(lung)) is None
    lung[-1, 5:35, 5:35] = True  # the top slice full of lung: cut
    warning = partial_lungs_warning(*_fake_ct(lung))
    assert warning and "top slice: 100 %" in warning and "bottom" not in warning and "no severity band" in warning
    short = np.zeros_like(lung)
    short[10:16, 5:35, 5:35] = True  # 60 mm of lung, clear of both ends
    assert 60 < MIN_LUNG_HEIGHT_MM
    warning = partial_lungs_warning(*_fake_ct(short))
    assert warning and "only 60 mm high" in warning and "slice:" not in warning
    assert 0 < EDGE_LUNG_FRACTION < 0.1


# ---------------------------------------------------------------------------------------------- covidct analyze

@pytest.fixture(scope="module")
def reports(cases, tmp_path_factory) -> dict[str, dict]:
    """report.json of `covidct analyze` (lesions-unet, one classifier) for every case."""
    from CovidCTAnalysis.pipeline.analyze import AnalyzeOptions, analyze

    registry = load_registry()
    for name in ("lesions-unet", "decovnet"):
        if name not in registry.entries:
            pytest.skip(f"{name} is not registered in this checkout")
    folder = tmp_path_factory.mktemp("coverage-analyze")
    options = AnalyzeOptions(device="cpu", models="decovnet")
    return {name: analyze(path, folder / name, options) for name, path in cases.items()}


def test_coarse_pixels_warn_where_fine_ones_do_not(reports):
    """The same patient at 2.73 mm and at 1.37 mm pixels: only the first warns; both keep their numbers and band."""
    coarse, fine = reports["coarse"], reports["fine"]
    assert len(coarse["warnings"]) == 1, coarse["warnings"]  # the lungs are whole: no other warning
    assert "in-plane pixels of 2.73 mm" in coarse["warnings"][0] and "(<= 2 mm)" in coarse["warnings"][0]
    assert fine["warnings"] == []
    for report in (coarse, fine):
        assert report["lesions"]["severity"]["band"].startswith("CT-")
        assert report["lesions"]["percent_involvement"]["total"] > 0


@pytest.mark.parametrize("case", ["mid", "apex"])
def test_a_few_slices_get_no_band_where_the_whole_demo_gets_one(reports, case):
    assert reports["fine"]["lesions"]["severity"]["band"].startswith("CT-")
    report = reports[case]
    assert report["input"]["size"][2] == 3
    partial = [w for w in report["warnings"] if w.startswith("the lungs are not wholly inside the scan")]
    assert len(partial) == 1 and "cover only the scanned part" in partial[0], report["warnings"]
    assert report["lesions"]["severity"]["band"] is None
    assert report["lesions"]["severity"]["description"] == PARTIAL_LUNGS_NOT_GRADED
    assert report["lesions"]["percent_involvement"]["total"] is not None  # still measured, of what was scanned
    assert report["lungs"] is not None


@pytest.mark.parametrize("kept", [1, 2])
def test_one_lung_only_is_not_the_whole_lungs(kept):
    """A view that holds one lung (the other outside the field of view, lungs/split.py) has no whole-lungs band."""
    size = (40, 40, 30)
    labels = np.zeros(size[::-1], np.uint8)
    labels[3:27, 10:30, 5:18] = 1
    labels[3:27, 10:30, 22:35] = 2
    ct = SimpleNamespace(is_2d=False, display_windowed=False,
                         image=sitk.Image(*size, sitk.sitkInt16))
    ct.image.SetSpacing((1.0, 1.0, 10.0))  # 240 mm of lung, no lung in the end slices: whole lungs
    both = sitk.GetImageFromArray(labels)
    both.CopyInformation(ct.image)
    assert partial_lungs_warning(ct, both) is None
    one = sitk.GetImageFromArray(np.where(labels == kept, labels, 0).astype(np.uint8))
    one.CopyInformation(ct.image)
    warning = partial_lungs_warning(ct, one)
    side, other = ("right", "left") if kept == 1 else ("left", "right")
    assert warning is not None and f"only the {side} lung found: the {other} lies outside" in warning
