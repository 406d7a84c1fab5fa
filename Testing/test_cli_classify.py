"""`covidct classify` (docs/CONTRACTS.md: CSV path,probability,label) and `covidct segment-lesions --model
pseudo-mask`."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.demo import make_demo_ct
from CovidCTAnalysis.models import load_registry

from conftest import sha256_tree


def covidct(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "CovidCTAnalysis", *map(str, args)], capture_output=True,
                          text=True, timeout=600, **kw)


def needs(model: str) -> None:
    if model not in load_registry().entries:
        pytest.skip(f"{model} is not registered in this checkout")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("classify-inputs")
    case = make_demo_ct(size=(96, 96, 40), seed=3)
    ct = folder / "small-ct.nii.gz"
    sitk.WriteImage(sitk.Cast(case.image, sitk.sitkInt16), str(ct))
    hu = sitk.GetArrayFromImage(case.image)[20]
    png = folder / "slice.png"
    Image.fromarray((np.clip((hu + 1350) / 1500, 0, 1) * 255).astype(np.uint8)).save(png)
    return {"ct": ct, "png": png}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_slice_resnet_csv_for_a_slice_and_a_volume(inputs, tmp_path):
    needs("slice-resnet")
    before = sha256_tree(inputs["ct"].parent)
    out = tmp_path / "scores.csv"
    proc = covidct("classify", "--model", "slice-resnet", inputs["png"], inputs["ct"], "-o", out, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(out)
    assert [r["path"] for r in rows] == [str(inputs["png"]), str(inputs["ct"])]
    assert list(rows[0])[:3] == ["path", "probability", "label"]
    for row in rows:
        assert 0.0 <= float(row["probability"]) <= 1.0
        assert row["label"] == ("COVID-19" if float(row["probability"]) >= 0.5 else "non-COVID")
    assert rows[1]["corona_score_cm3"] != "" and int(rows[1]["lung_slices"]) > 0  # volume-only columns
    assert sha256_tree(inputs["ct"].parent) == before, "inputs are never modified"


def test_decovnet_refuses_a_single_slice_and_writes_nothing(inputs, tmp_path):
    needs("decovnet")
    out = tmp_path / "scores.csv"
    proc = covidct("classify", "--model", "decovnet", inputs["ct"], inputs["png"], "-o", out)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "slice.png" in proc.stderr and "volumes" in proc.stderr
    assert not out.exists() and not list(tmp_path.iterdir()), "no partial CSV"


def test_decovnet_csv_for_a_volume(inputs, tmp_path):
    needs("decovnet")
    out = tmp_path / "scores.csv"
    proc = covidct("classify", "--model", "decovnet", inputs["ct"], "-o", out, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    (row,) = read_csv(out)
    assert 0.0 <= float(row["probability"]) <= 1.0 and row["threshold"] == "0.5"


def test_pseudo_mask_is_one_named_segment(inputs, tmp_path):
    out = tmp_path / "pseudo.seg.nrrd"
    proc = covidct("segment-lesions", inputs["ct"], "-o", out, "--model", "pseudo-mask")
    assert proc.returncode == 0, proc.stderr
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert set(np.unique(labels).tolist()) <= {0, 1} and labels.any()
    header = out.read_bytes()[:4096].decode("latin-1")
    assert "Segment0_Name:=suspected infection (intensity pseudo-mask)" in header


def test_segment_lungs_model_choice(inputs, tmp_path):
    needs("lungs-unet")
    out = {}
    for model in ("lungs-classic", "lungs-unet"):
        path = tmp_path / f"{model}.nii.gz"
        proc = covidct("segment-lungs", inputs["ct"], "-o", path, "--model", model, "--device", "cpu")
        assert proc.returncode == 0, proc.stderr
        out[model] = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    a, b = out["lungs-classic"], out["lungs-unet"]
    assert set(np.unique(b).tolist()) == {0, 1, 2}
    for label in (1, 2):  # the two models agree on which lung is which
        overlap = np.logical_and(a == label, b == label).sum()
        assert 2 * overlap / ((a == label).sum() + (b == label).sum()) > 0.9, label
    proc = covidct("segment-lungs", inputs["ct"], "-o", tmp_path / "x.nii.gz", "--model", "lesions-unet")
    assert proc.returncode == 2 and "lung model" in proc.stderr and not (tmp_path / "x.nii.gz").exists()
