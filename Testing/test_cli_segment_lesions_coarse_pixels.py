"""`covidct segment-lesions` warns about pixels too coarse for lesions-unet, as `covidct analyze` does.

lesions-unet was trained on in-plane pixels up to 2 mm (pipeline/coverage.py); at 2.73 mm the demo patient's
normal lung reads as lesion. `analyze` puts the warning in its report and on stderr; `segment-lesions` writes only a
label map, so stderr is where its user learns it. The line comes from the same function (``coarse_pixel_warning``),
so the rule and its words cannot drift apart. The pseudo-mask is an intensity rule, trained on nothing: no warning.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk

from conftest import covidct
from CovidCTAnalysis.io import load_ct
from CovidCTAnalysis.models import load_registry
from CovidCTAnalysis.pipeline.coverage import LESIONS_UNET_MAX_PIXEL_MM, coarse_pixel_warning

COARSE = (128, 128, 16)  # the demo's 350 mm field of view at 2.73 mm pixels


@pytest.fixture(scope="module")
def coarse_ct(tmp_path_factory) -> Path:
    from CovidCTAnalysis.demo import make_demo_ct

    path = tmp_path_factory.mktemp("coarse") / "coarse.nrrd"
    sitk.WriteImage(make_demo_ct(size=COARSE, seed=0).image, str(path))
    return path


def test_segment_lesions_prints_the_coarse_pixel_warning_of_analyze(coarse_ct, tmp_path):
    if "lesions-unet" not in load_registry().entries:
        pytest.skip("lesions-unet is not registered in this checkout")
    ct = load_ct(coarse_ct)
    assert ct.spacing[0] > LESIONS_UNET_MAX_PIXEL_MM
    expected = coarse_pixel_warning(ct, "lesions-unet")
    assert expected is not None and "in-plane pixels of 2.73 mm" in expected
    out = tmp_path / "lesions.nrrd"
    proc = covidct("segment-lesions", coarse_ct, "-o", out, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert f"covidct: warning: {coarse_ct}: {expected}\n" in proc.stderr, proc.stderr
    assert proc.stderr.count("coarser than") == 1
    assert "Traceback" not in proc.stderr
    assert out.is_file(), "the label map is still written, as analyze keeps its numbers"


def test_the_pseudo_mask_gets_no_coarse_pixel_warning(coarse_ct, tmp_path):
    out = tmp_path / "pseudo.nrrd"
    proc = covidct("segment-lesions", coarse_ct, "-o", out, "--model", "pseudo-mask")
    assert proc.returncode == 0, proc.stderr
    assert "coarser than" not in proc.stderr, proc.stderr
    assert out.is_file()
