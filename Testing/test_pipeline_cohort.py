"""cohort.html and `covidct batch --labels` (issue 21): labels matched to case ids, distributions, ROC with bootstrap
CIs through the evaluation harness, threshold table; a bad labels file is one line, exit 2, nothing written. Fast:
synthetic cohort rows, no models."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.evaluation import metrics
from CovidCTAnalysis.pipeline.batch import make_cases
from CovidCTAnalysis.pipeline.cohort_html import cohort_html
from CovidCTAnalysis.pipeline.cohort_labels import read_labels


def _rows(n_pos=12, n_neg=10, seed=0) -> tuple[list[dict], dict]:
    rng = np.random.default_rng(seed)
    rows, labels = [], {}
    for k in range(n_pos + n_neg):
        y = int(k < n_pos)
        case = f"case-{k + 1:04d}"
        labels[case] = y
        rows.append({"case_id": case, "lung_ml": float(rng.normal(4500, 600)),
                     "involvement_percent": float(rng.uniform(5, 40) if y else rng.uniform(0, 3)),
                     "p_covid_slice-resnet": float(np.clip(0.35 * y + rng.uniform(0, 0.65), 0, 1)),
                     "p_covid_decovnet": None if k == 0 else float(rng.uniform(0, 1))})
    return rows, labels


def _auc_cells(page: str) -> dict[str, tuple[float, float, float]]:
    found = re.findall(r"<tr><td>([\w-]+)</td><td>\d+</td><td>\d+</td><td>([\d.]+)</td><td>([\d.]+)&ndash;([\d.]+)",
                       page)
    return {name: (float(a), float(lo), float(hi)) for name, a, lo, hi in found}


def test_roc_band_is_the_bootstrap_of_the_harness():
    rows, labels = _rows()
    y = np.array([labels[r["case_id"]] for r in rows])
    p = np.array([r["p_covid_slice-resnet"] for r in rows])
    band = metrics.roc_band(y, p, n=300, seed=3)
    assert band["auc"] == pytest.approx(metrics.roc_auc(y, p))
    assert band["auc_ci95"] == metrics.bootstrap_ci(y, p, metrics.roc_auc, 300, seed=3)  # the same resamples
    low, high = np.array(band["low"]), np.array(band["high"])
    assert np.all(low <= high) and np.all(np.diff(low) >= 0) and high[-1] == 1.0
    assert low[50] < 1.0 and high[0] > 0.0  # a real band, not the curve twice
    assert metrics.roc_band(np.ones(4), np.full(4, 0.5)) is None


def test_cohort_page_with_labels_has_roc_auc_with_ci_and_threshold_table_per_classifier():
    rows, labels = _rows()
    page = cohort_html(rows, labels, failed=1, n_boot=200)
    cells = _auc_cells(page)
    assert set(cells) == {"decovnet", "slice-resnet"}
    y = np.array([labels[r["case_id"]] for r in rows])
    p = np.array([r["p_covid_slice-resnet"] for r in rows])
    auc, lo, hi = cells["slice-resnet"]
    assert auc == pytest.approx(metrics.roc_auc(y, p), abs=5e-4)
    ci = metrics.bootstrap_ci(y, p, metrics.roc_auc, 200, seed=0)
    assert (lo, hi) == pytest.approx(tuple(ci), abs=5e-4) and lo < auc <= hi
    assert page.count("<td>0.5</td>") == 2 and page.count("<td>0.9</td>") == 2  # one threshold table each
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 + 2 + 2  # lung and involvement, one P(COVID-19) strip per model, one ROC per model
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "21 with a label" not in page and "22 with a label" in page and "1 failed" in page


def test_cohort_page_without_labels_or_without_both_classes_has_no_roc():
    rows, labels = _rows()
    page = cohort_html(rows, None)
    assert not _auc_cells(page) and "--labels" in page and page.count("data:image/png") == 4
    only_positive = {k: v for k, v in labels.items() if v == 1}
    page = cohort_html(rows, only_positive, n_boot=50)
    assert not _auc_cells(page) and "No ROC for decovnet, slice-resnet" in page


def test_labels_match_by_path_or_case_id_in_every_spelling(tmp_path):
    (tmp_path / "ct").mkdir()
    cases = make_cases([tmp_path / "ct" / "a.nii.gz", tmp_path / "ct" / "b", tmp_path / "c.png", tmp_path / "d.png"])
    labels = tmp_path / "labels.csv"
    labels.write_text("path,case_id,label\nct/a.nii.gz,,COVID-19\n" + f"{tmp_path / 'ct' / 'b'},,non-covid\n"
                      ",case-0003, 1 \nelsewhere.png,,0\n")
    result = read_labels(labels, cases)
    assert result.by_case == {"case-0001": 1, "case-0002": 0, "case-0003": 1} and result.ignored == 1


@pytest.mark.parametrize("text, problem", [
    ("path,diagnosis\na.png,1\n", "needs a header row with a 'label' column"),
    ("path,label\na.png,maybe\n", "row 2: label 'maybe' is not 1, 0, COVID-19 or non-COVID"),
    ("path,label\na.png,1\n,0\n", "row 3: names no case"),
    ("case_id,label\ncase-0001,1\ncase-0001,0\n", "row 3: gives case-0001 a second, different label"),
    ("path,label\nother.png,1\n", "none of its 1 rows names an input of this batch"),
    (b"path,label\n\xff\xfe,1\n", "cannot be read as a labels file"),
])
def test_a_bad_labels_file_is_refused_naming_the_file(tmp_path, text, problem):
    labels = tmp_path / "labels.csv"
    (labels.write_bytes if isinstance(text, bytes) else labels.write_text)(text)
    with pytest.raises(InputError) as err:
        read_labels(labels, make_cases([tmp_path / "a.png"]))
    assert problem in str(err.value) and err.value.path == str(labels)


def test_batch_with_a_bad_labels_file_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys):
    from CovidCTAnalysis.cli import main

    ct = tmp_path / "a.png"
    ct.write_bytes(b"x")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\na.png,perhaps\n")
    out = tmp_path / "out"
    assert main(["batch", str(ct), "-o", str(out), "--labels", str(labels), "--models", "slice-resnet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(labels) in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_a_finished_batch_rerun_with_labels_writes_cohort_page_without_paths(tmp_path):
    """Every case done before: the rerun analyzes nothing and only rewrites the tables and cohort.html."""
    pytest.importorskip("distributed")
    from CovidCTAnalysis.pipeline.analyze import AnalyzeOptions
    from CovidCTAnalysis.pipeline.batch import run_batch

    secret = tmp_path / "Doe_Jane"
    cases = make_cases([secret / f"ct{k}.nii.gz" for k in range(6)])
    out = tmp_path / "out"
    for k, case in enumerate(cases):
        (out / case.case_id).mkdir(parents=True)
        report = {"files": ["report.json"], "lungs": {"total_ml": 4000.0 + k},
                  "lesions": {"percent_involvement": {"total": 2.0 * k}},
                  "classifiers": {"slice-resnet": {"probability": 0.1 + 0.15 * k}}}
        (out / case.case_id / "report.json").write_text(json.dumps(report))
    labels = {c.case_id: int(k >= 3) for k, c in enumerate(cases)}
    result = run_batch(cases, out, AnalyzeOptions(device="cpu", models="slice-resnet"), labels=labels)
    assert len(result.skipped) == 6 and not result.done
    page = (out / "cohort.html").read_text()
    assert _auc_cells(page)["slice-resnet"][0] == 1.0
    assert "Doe" not in page and str(tmp_path) not in page
    assert (out / "cohort.csv").read_text().splitlines()[1].endswith(",0")  # the label column
    assert not list(out.glob(".*tmp*")), "no temporary file left"
