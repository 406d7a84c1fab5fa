"""`covidct batch` (pipeline/batch.py, issue 21): Dask workers, one folder per case, resumable after an interruption,
failures recorded without stopping the others, a cohort table without patient paths."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from CovidCTAnalysis.pipeline.batch import cohort_row, is_done, make_cases  # noqa: E402

SEMISEG = Path("covid-semiseg/TrainingSet/LungInfection-Train/Doctor-label/Imgs")
NONCOVID = [Path("covid-ct/images/NonCOVID") / name for name in ("23.png", "24.png", "25.png")]


def _batch(*args, **kw) -> list[str]:
    return [sys.executable, "-m", "CovidCTAnalysis", "batch", *map(str, args)]


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_case_ids_are_running_numbers_and_carry_no_path(tmp_path):
    cases = make_cases([tmp_path / "Doe_Jane" / "ct.nii.gz", tmp_path / "b.png", tmp_path / "Doe_Jane" / "ct.nii.gz"])
    assert [c.case_id for c in cases] == ["case-0001", "case-0002"]
    row = cohort_row("case-0001", {"lungs": {"right_ml": 1.0, "left_ml": 2.0, "total_ml": 3.0}, "lesions": None,
                                   "classifiers": {"decovnet": {"probability": 0.25}}, "warnings": []})
    assert row["lung_ml"] == 3.0 and row["p_covid_decovnet"] == 0.25 and "Doe" not in json.dumps(row)


def test_a_case_is_done_only_with_every_file_its_report_lists(tmp_path):
    assert not is_done(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"files": ["report.json", "lungs.seg.nrrd"]}))
    assert not is_done(tmp_path)
    (tmp_path / "lungs.seg.nrrd").write_text("x")
    assert is_done(tmp_path)


@pytest.mark.realdata
def test_interrupted_batch_resumes_each_case_once_and_records_the_broken_one(shared_data, tmp_path):
    """Two workers over 5 COVID-19 slices (SemiSeg) and 3 non-COVID slices (COVID-CT) and one broken file; Ctrl-C
    after two cases, then a rerun with --labels that draws cohort.html's ROC (the done-when of issue 21 on 2-D cases;
    scripts/cohort_roc_radiopaedia.py does it on the 3-D Radiopaedia stacks against the imlab normals)."""
    images = sorted((shared_data / SEMISEG).glob("*.jpg"))[:5] + [shared_data / p for p in NONCOVID]
    assert len(images) == 8 and all(p.is_file() for p in images)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    out = tmp_path / "cohort"
    args = _batch(*images, broken, "-o", out, "--workers", "2", "--device", "cpu", "--models", "slice-resnet")
    # the child starts with Ctrl-C's default action: a disposition "ignored" that something earlier in this pytest
    # process may have set would be inherited across exec, and the interruption would never land
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    done_lines = 0
    deadline = time.monotonic() + 300
    while done_lines < 2 and time.monotonic() < deadline:
        line = first.stderr.readline()
        if not line:
            break
        done_lines += ": done (" in line
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    _, first_err = first.communicate(timeout=120)
    assert first.returncode != 0, (f"the batch was not interrupted (SIGINT here: {signal.getsignal(signal.SIGINT)}); "
                                   f"stderr: {first_err[-500:]}")
    finished_first = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("case-*/report.json")}
    assert 2 <= len(finished_first) < 8, "the interruption must fall in the middle of the batch"
    for folder in out.glob("case-*"):  # no half-written case: a folder is a finished case or will be redone
        assert is_done(folder) or not (folder / "report.json").exists()

    labels = tmp_path / "labels.csv"  # COVID-19 slices by path, the normals by case id, in both spellings
    labels.write_text("path,case_id,label\n" + "".join(f"{p},,COVID-19\n" for p in images[:5])
                      + ",case-0006,0\n,case-0007,non-COVID\n,case-0008,0\n")
    second = subprocess.run(args + ["--labels", labels], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    folders = sorted(p.name for p in out.glob("case-*"))
    assert folders == [f"case-{k:04d}" for k in range(1, 9)], folders
    assert all(is_done(out / name) for name in folders)
    assert not [p for p in out.glob("case-*/.covidct*")], "no staging or lock left"
    for name, mtime in finished_first.items():  # done exactly once
        assert (out / name / "report.json").stat().st_mtime_ns == mtime
    assert second.stderr.count("done before, skipped") == len(finished_first)
    failures = _csv(out / "failures.csv")
    assert [f["case_id"] for f in failures] == ["case-0009"] and "INPUT" in failures[0]["error"]
    cohort = _csv(out / "cohort.csv")
    assert [r["case_id"] for r in cohort] == folders
    assert [r["label"] for r in cohort] == ["1"] * 5 + ["0"] * 3
    page = (out / "cohort.html").read_text()
    assert re.search(r"<tr><td>slice-resnet</td><td>8</td><td>5</td><td>[01]\.\d{3}</td><td>[01]\.\d{3}&ndash;", page)
    assert page.count("data:image/png;base64,") == 4 and str(shared_data) not in page and "NonCOVID" not in page
    assert all(0.0 <= float(r["p_covid_slice-resnet"]) <= 1.0 and float(r["lung_ml"]) > 0 for r in cohort)
    text = (out / "cohort.csv").read_text() + (out / "failures.csv").read_text()
    assert str(shared_data) not in text and "broken" not in text, "no input path in the cohort outputs"


def test_a_rerun_with_other_inputs_is_refused(tmp_path):
    """case-0001 of the first list must not be taken as done for another CT."""
    from CovidCTAnalysis.errors import InputError
    from CovidCTAnalysis.pipeline.batch import INPUTS_FILE, checked_inputs, record_inputs

    def check_and_record(paths):
        record_inputs(tmp_path, checked_inputs(tmp_path, make_cases([tmp_path / p for p in paths])))

    check_and_record(["a.nii.gz", "b.nii.gz"])
    check_and_record(["a.nii.gz", "b.nii.gz", "c.nii.gz"])
    with pytest.raises(InputError, match="case-0001 was another file"):
        check_and_record(["b.nii.gz", "a.nii.gz"])
    assert "a.nii.gz" not in (tmp_path / INPUTS_FILE).read_text()


def test_largest_inputs_are_submitted_first(tmp_path):
    """Longest-processing-time-first: a big case started last would run alone while the other workers idle."""
    from CovidCTAnalysis.pipeline.batch import largest_first

    (tmp_path / "stack").mkdir()
    for k in range(3):
        (tmp_path / "stack" / f"{k}.jpg").write_bytes(b"x" * 400)
    (tmp_path / "small.png").write_bytes(b"x" * 100)
    (tmp_path / "big.nii.gz").write_bytes(b"x" * 1000)
    (tmp_path / "same.png").write_bytes(b"x" * 100)
    cases = make_cases([tmp_path / "small.png", tmp_path / "stack", tmp_path / "big.nii.gz", tmp_path / "same.png",
                        tmp_path / "missing.png"])
    assert [c.case_id for c in largest_first(cases)] == ["case-0002", "case-0003", "case-0001", "case-0004",
                                                         "case-0005"]
