"""`covidct analyze --demo` end to end: report.json keys, report.html, lungs.seg.nrrd, progress events, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.models import load_registry
from CovidCTAnalysis.models.registry import CONTRACT_MODELS

DEMO_SIZE = "112,112,56"
CONTRACT_KEYS = {"input", "lungs", "lesions", "classifiers", "timings_s", "models", "version"}


def covidct(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "CovidCTAnalysis", *map(str, args)], capture_output=True,
                          text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("analyze") / "out"
    proc = covidct("analyze", "--demo", "--demo-size", DEMO_SIZE, "-o", out, "--progress", "jsonl")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_outputs_written(demo_run):
    out, _ = demo_run
    names = {p.name for p in out.iterdir()}
    assert {"report.json", "report.html", "lungs.seg.nrrd", "demo-ct.nrrd"} <= names
    assert not [n for n in names if n.startswith(".")], "no staging leftovers or lock"
    assert not [n for n in names if n.endswith(".dcm")], "DICOM outputs only for a DICOM input"
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["files"] == sorted(names)
    modes = {oct((out / n).stat().st_mode & 0o777) for n in names}
    assert len(modes) == 1, f"every output gets the same permissions (report.json was 0600): {modes}"


def test_report_json_contract(demo_run):
    out, _ = demo_run
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert CONTRACT_KEYS <= set(report)
    assert report["input"]["size"] == [112, 112, 56]
    assert report["input"]["display_windowed"] is False
    assert report["input"]["path"] == str(out / "demo-ct.nrrd")
    assert set(report["timings_s"]) >= {"demo", "load", "lungs", "lesions", "classifiers", "report"}
    assert report["models"]["lungs-classic"]
    # what this version ships runs; what it lacks is declared, never faked
    registry = load_registry()
    if "lesions-unet" in registry.entries:
        assert report["models"]["lesions-unet"] == registry.get("lesions-unet").version
        pi = report["lesions"]["percent_involvement"]
        assert report["lesions"]["total_ml"] > 0 and 0 < pi["total"] < 100
        assert report["lesions"]["severity"]["band"].startswith("CT-")
    else:
        assert report["lesions"] is None and "lesions" in report["unavailable"]
    shipped = registry.available("classification")
    assert set(report["classifiers"]) == set(shipped)
    for name, task in CONTRACT_MODELS.items():  # every reserved classifier either ran or is declared missing
        if task == "classification" and name not in shipped:
            assert "not available" in report["unavailable"][name]


def test_report_has_calibrated_probabilities_and_consensus(demo_run):
    """Issue 22: calibrated where the registry has a calibration for a volume (raw beside it); the consensus is
    their mean."""
    out, _ = demo_run
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    registry = load_registry()
    for name, result in report["classifiers"].items():
        calibration = registry.get(name).calibration or {}
        applies = bool(calibration) and "volume" in calibration.get("inputs", ["volume"])
        assert ("probability_raw" in result) == applies, name
    consensus = report["consensus"]
    assert consensus["models"] == sorted(report["classifiers"])
    mean = np.mean([r["probability"] for r in report["classifiers"].values()])
    assert consensus["probability"] == pytest.approx(mean)
    assert consensus["disagreement"] == (consensus["spread"] > registry.disagreement_threshold)


def test_classifier_heatmaps_on_input_grid(demo_run):
    out, _ = demo_run
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    if not report["classifiers"]:
        pytest.skip("no classifier is registered in this checkout")
    ct = sitk.ReadImage(str(out / "demo-ct.nrrd"))
    for name, result in report["classifiers"].items():
        assert 0.0 <= result["probability"] <= 1.0 and result["label"] in ("COVID-19", "non-COVID"), name
        heat = sitk.ReadImage(str(out / result["heatmap"]))
        assert result["heatmap"] == f"heatmap-{name}.nrrd"
        assert heat.GetSize() == ct.GetSize() and np.allclose(heat.GetOrigin(), ct.GetOrigin())
        values = sitk.GetArrayViewFromImage(heat)
        assert values.min() >= 0.0 and values.max() <= 1.0 + 1e-6, name
        # every explanation map: heatmap-MODEL-METHOD.nrrd, the default one as heatmap-MODEL.nrrd (docs/CONTRACTS.md)
        assert result["heatmap"] in result["heatmaps"].values()
        for method, file in result["heatmaps"].items():
            assert file in (result["heatmap"], f"heatmap-{name}-{method}.nrrd"), (name, method, file)
            other = sitk.ReadImage(str(out / file))
            assert other.GetSize() == ct.GetSize() and np.allclose(other.GetOrigin(), ct.GetOrigin())
            values = sitk.GetArrayViewFromImage(other)
            assert values.min() >= 0.0 and values.max() <= 1.0 + 1e-6, (name, method)
    if "slice-resnet" in report["classifiers"]:
        assert report["classifiers"]["slice-resnet"]["heatmaps"] == {"gradcam": "heatmap-slice-resnet.nrrd",
                                                                     "lrp": "heatmap-slice-resnet-lrp.nrrd"}


def test_lung_volumes_match_truth(demo_run):
    out, _ = demo_run
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    truth = report["demo_truth"]["lungs"]
    for side in ("right_ml", "left_ml", "total_ml"):
        assert report["lungs"][side] == pytest.approx(truth[side], rel=0.06), side
    assert report["lungs"]["right_ml"] > report["lungs"]["left_ml"]


def test_lungs_seg_on_input_grid(demo_run):
    out, _ = demo_run
    ct = sitk.ReadImage(str(out / "demo-ct.nrrd"))
    seg = sitk.ReadImage(str(out / "lungs.seg.nrrd"))
    assert seg.GetSize() == ct.GetSize()
    assert np.allclose(seg.GetSpacing(), ct.GetSpacing()) and np.allclose(seg.GetOrigin(), ct.GetOrigin())
    labels = np.unique(sitk.GetArrayViewFromImage(seg))
    assert set(labels.tolist()) == {0, 1, 2}


def test_progress_events(demo_run):
    _, proc = demo_run
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events, "progress events on stdout"
    for e in events:
        assert set(e) == {"stage", "progress", "message"} and 0.0 <= e["progress"] <= 1.0
    stages = list(dict.fromkeys(e["stage"] for e in events))
    assert stages == ["demo", "load", "lungs", "lesions", "classifiers", "report"]
    assert all(any(e["stage"] == s and e["progress"] == 1.0 for e in events) for s in stages)


def test_report_html_has_images(demo_run):
    out, _ = demo_run
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2  # axial and coronal, then one per non-empty heatmap
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    for name, result in report["classifiers"].items():
        if sitk.GetArrayViewFromImage(sitk.ReadImage(str(out / result["heatmap"]))).any():
            for method in result["heatmaps"]:  # each map on the default map's strongest slice, side by side
                assert f"{name} {method}, axial slice" in page, (name, method)
    assert "right lung" in page and "Research use only" in page


def test_same_input_same_output(demo_run, tmp_path):
    out, _ = demo_run
    proc = covidct("analyze", out / "demo-ct.nrrd", "-o", tmp_path / "again", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    first = json.loads((out / "report.json").read_text(encoding="utf-8"))
    second = json.loads((tmp_path / "again" / "report.json").read_text(encoding="utf-8"))
    assert first["lungs"] == second["lungs"]
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "lungs.seg.nrrd")))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "again" / "lungs.seg.nrrd")))
    assert np.array_equal(a, b)


def test_version_and_models():
    from CovidCTAnalysis import __version__

    assert covidct("--version").stdout.strip() == f"covidct {__version__}"
    listing = covidct("models")
    assert listing.returncode == 0
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert "no weights needed" in lines["lungs-classic"]
    registry = load_registry()
    for name in CONTRACT_MODELS:
        if name not in registry.entries:
            assert "not available in this version" in lines[name]
        else:
            assert registry.get(name).version in lines[name]
    assert len(lines) == len(CONTRACT_MODELS)


def test_existing_output_folder_keeps_other_files(tmp_path, demo_run):
    out, _ = demo_run
    target = tmp_path / "existing"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    proc = covidct("segment-lungs", out / "demo-ct.nrrd", "-o", target / "lungs.nii.gz")
    assert proc.returncode == 0, proc.stderr
    assert (target / "mine.txt").read_text(encoding="utf-8") == "keep me"
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(target / "lungs.nii.gz")))
    assert set(np.unique(labels).tolist()) == {0, 1, 2}


def test_single_slice_gets_involvement_but_no_severity_band(demo_run, tmp_path):
    if "lesions-unet" not in load_registry().entries:
        pytest.skip("lesions-unet is not registered in this checkout")
    from PIL import Image

    out, _ = demo_run
    hu = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "demo-ct.nrrd")))
    z = int(np.argmax((sitk.GetArrayFromImage(sitk.ReadImage(str(out / "demo-truth-lesions.nrrd"))) > 0).sum((1, 2))))
    png = tmp_path / "slice.png"
    Image.fromarray((np.clip((hu[z] + 1350) / 1500, 0, 1) * 255).astype(np.uint8)).save(png)
    proc = covidct("analyze", png, "-o", tmp_path / "out", "--spacing", "0.8,0.8,5", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["input"]["display_windowed"] is True
    # da-cmil and cvae-netvlad find a picture's lungs with lungs-unet: it ran, so it is listed with its version
    framing = [n for n in ("da-cmil", "cvae-netvlad") if n in report["classifiers"]]
    assert ("lungs-unet" in report["models"]) == bool(framing)
    assert "total" in report["lesions"]["percent_involvement"]
    assert report["lesions"]["severity"]["band"] is None  # MosMedData grades whole lungs, not one slice
    assert "decovnet" not in report["classifiers"]
    if "decovnet" in load_registry().entries:  # a volume classifier says why it did not run
        assert "volumes" in report["unavailable"]["decovnet"]


def test_terminal_summary_names_the_numbers_of_the_report(demo_run):
    """Without --progress jsonl, analyze prints lung and lesion volumes, the band, each classifier's call and the
    consensus, as report.json has them, then the report's path."""
    from CovidCTAnalysis.cli import _summary

    out, _ = demo_run
    report = json.loads((out / "report.json").read_text())
    lines = _summary(report)
    assert lines[0].startswith("lungs: right ")
    lesions = report["lesions"]
    assert lines[1].startswith(f"lesions: {lesions['total_ml']:.1f} mL") and lesions["severity"]["band"] in lines[1]
    for name, entry in report["classifiers"].items():
        assert f"{name}: {entry['label']}, P(COVID-19) {entry['probability']:.2f}" in lines
    if len(report["classifiers"]) > 1:
        assert lines[-1].startswith(f"consensus: P(COVID-19) {report['consensus']['probability']:.2f}")


def test_report_html_sets_the_demo_against_its_truth(demo_run):
    """A --demo report shows each measurement beside the generated CT's truth and their difference."""
    out, _ = demo_run
    report = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text()
    assert "measured against the truth" in page
    truth, lesions = report["demo_truth"], report["lesions"]
    measured, true = lesions["total_ml"], truth["lesions"]["total_ml"]
    assert (f"<th>all lesions</th><td>{measured:,.1f} mL</td><td>{true:,.1f} mL</td>"
            f"<td>{measured - true:+,.1f} mL</td>") in page
    right = report["lungs"]["right_ml"], truth["lungs"]["right_ml"]
    assert f"<th>right lung</th><td>{right[0]:,.1f} mL</td><td>{right[1]:,.1f} mL</td>" in page


def test_report_html_says_how_far_each_classifier_was_validated(demo_run):
    """Each classifier's result comes with the registry's one-line validation summary (the model card's figures)."""
    import html

    from CovidCTAnalysis.models import load_registry

    out, _ = demo_run
    report = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text()
    registry = load_registry()
    for name in report["classifiers"]:
        text = registry.get(name).validation
        assert text, f"{name} has no validation summary in the registry"
        assert f"validation: {html.escape(text)}" in page
        assert report["classifiers"][name]["validation"] == text  # kept with the result it qualifies
    # the consensus too: a CT volume's set of classifiers (decovnet among them) is not the one it was measured on
    consensus, measured_on = report["consensus"], registry.consensus["validation"]
    assert consensus["models"] != sorted(measured_on["models"])
    assert consensus["validation"].startswith("not validated for this set (with decovnet") and \
        consensus["validation"].endswith(measured_on["text"])
    assert f"validation: {html.escape(consensus['validation'])}" in page
