"""The trainer scripts on a user's bad cohort, weights or --out: one stderr line naming the file, exit status 2,
before any work, nothing written (docs/CONTRACTS.md "Exit status"); Ctrl-C: exit 130, no --out file."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"

#: mode -> (script, its cohort options for CSV and FOLDER, options that keep a run that got past the checks short)
MODES = {
    "decovnet": ("train_decovnet", lambda csv, folder: ["--cohort", str(folder), "--labels", str(csv)],
                 ["--in-plane", "32,48", "--z-mm", "10", "--epochs", "1", "--threads", "1"]),
    "da-cmil-images": ("train_da_cmil", lambda csv, folder: ["--cohort", str(csv)],
                       ["--epochs", "1", "--pretrained", "none", "--threads", "1"]),
    "da-cmil-volumes": ("train_da_cmil", lambda csv, folder: ["--volume-cohort", str(csv)],
                        ["--epochs", "1", "--threads", "1"]),
    "lobe-patch": ("train_lobe_patch", lambda csv, folder: ["--cohort", str(csv)], ["--epochs", "1", "--threads", "1"]),
}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Four small demo CTs (c0-c3.nrrd: lesions, none, lesions, none), a slice of each (s0-s3.png), a text file."""
    import numpy as np
    import SimpleITK as sitk

    from CovidCTAnalysis.demo import make_demo_ct

    folder = tmp_path_factory.mktemp("cohort-source")
    for i, (seed, lesions) in enumerate([(1, True), (1, False), (2, True), (2, False)]):
        image = make_demo_ct(size=(64, 64, 24), seed=seed, lesions=lesions).image
        sitk.WriteImage(image, str(folder / f"c{i}.nrrd"))
        hu = sitk.GetArrayFromImage(image)[12]
        sitk.WriteImage(sitk.GetImageFromArray(np.clip((hu + 1000) / 1400 * 255, 0, 255).astype(np.uint8)),
                        str(folder / f"s{i}.png"))
    (folder / "notes.txt").write_text("not an image\n")
    return folder


@pytest.fixture
def cohort(source, tmp_path) -> Path:
    folder = tmp_path / "cohort"
    shutil.copytree(source, folder)
    return folder


def rows(mode: str, labels) -> str:
    kind, ext = ("s", "png") if mode == "da-cmil-images" else ("c", "nrrd")
    return "path,label\n" + "".join(f"{kind}{i}.{ext},{y}\n" for i, y in enumerate(labels))


def run(mode: str, csv: Path, folder: Path, out: Path, *extra: str, cwd: Path | None = None):
    script, cohort_options, fast = MODES[mode]
    command = [sys.executable, str(SCRIPTS / f"{script}.py"), *cohort_options(csv, folder), *fast,
               "--out", str(out), *extra]
    if mode != "decovnet":
        command += ["--cache", str(out.parent.parent / "cache")]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=cwd or REPO)


def assert_refused(proc, mode: str, named: Path | str, fragment: str, out_dir: Path | None = None) -> str:
    """Exit 2, one stderr line ``SCRIPT: error: NAMED: ...FRAGMENT...``, no traceback, nothing in ``out_dir``."""
    script = MODES[mode][0] if mode in MODES else mode
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"{script}: error: {named}: "), lines[0]
    assert fragment in lines[0], lines[0]
    if out_dir is not None:
        assert not out_dir.exists() or not any(out_dir.iterdir()), sorted(out_dir.iterdir())
    return lines[0]


# (case, CSV text from (mode, cohort folder) or None for no CSV, the file the line names, its fragment)
CSV_CASES = [
    ("csv missing", None, "csv", "CSV does not exist"),
    ("header only", lambda m, f: "path,label\n", "csv", "lists no"),
    ("no label column", lambda m, f: rows(m, [1, 0]).replace("path,label", "path,diagnosis"), "csv",
     "needs a header with the columns path and label (found: path, diagnosis)"),
    ("label not 0/1", lambda m, f: rows(m, [1, 0, 1, 0]).replace(",0\n", ",maybe\n", 1), "csv",
     " 3 has the label 'maybe'"),
    ("row path missing", lambda m, f: rows(m, [1, 0, 1, 0]) + "gone.nrrd,1\n", "gone.nrrd",
     " 6 of cases.csv, but it does not exist (relative paths are read from"),
    ("row path a text file", lambda m, f: rows(m, [1, 0, 1, 0]) + "notes.txt,0\n", "notes.txt",
     "is not a CT or image file (extension .txt)"),
    ("one class only", lambda m, f: rows(m, [1, 1, 1, 1]), "csv", "has no "),
    ("not UTF-8", lambda m, f: (rows(m, [1, 0]) + "# Müller\n").encode("latin-1"), "csv", "is not UTF-8 text"),
]


@pytest.mark.parametrize("case,text,named,fragment", CSV_CASES, ids=[c[0] for c in CSV_CASES])
@pytest.mark.parametrize("mode", list(MODES))
def test_a_bad_cohort_csv_is_refused_before_any_work(mode, case, text, named, fragment, cohort, tmp_path):
    csv = cohort / "cases.csv"
    if text is not None:
        content = text(mode, cohort)
        csv.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    out_dir = tmp_path / "out"
    proc = run(mode, csv, cohort, out_dir / "w.pt")
    line = assert_refused(proc, mode, csv if named == "csv" else cohort / named, fragment, out_dir)
    assert "prepared" not in proc.stdout and "epoch" not in proc.stdout, line


@pytest.mark.parametrize("mode,listed,fragment", [
    ("da-cmil-images", "c0.nrrd", "is a CT volume (24 slices), listed in row 4 of cases.csv"),
    ("da-cmil-volumes", "s0.png", "is a 2-D image, listed in row 4 of cases.csv"),
    ("lobe-patch", "s0.png", "is a 2-D image, listed in row 4 of cases.csv"),
    ("decovnet", "s0.png", "is a 2-D image, listed in row 4 of cases.csv"),
])
def test_a_case_of_the_wrong_dimension_is_refused(mode, listed, fragment, cohort, tmp_path):
    """Before: da-cmil trained on the first slice of a volume listed as a 2-D image, without a word."""
    csv = cohort / "cases.csv"
    csv.write_text(rows(mode, [1, 0]) + f"{listed},1\n")
    assert_refused(run(mode, csv, cohort, tmp_path / "out" / "w.pt"), mode, cohort / listed, fragment,
                   tmp_path / "out")


@pytest.mark.parametrize("mode", ["decovnet", "da-cmil-images", "lobe-patch"])
def test_out_equal_to_the_csv_is_refused_and_the_csv_kept(mode, cohort):
    csv = cohort / "cases.csv"
    csv.write_text(rows(mode, [1, 0, 1, 0]))
    before = csv.read_bytes()
    assert_refused(run(mode, csv, cohort, csv), mode, csv, "is the input itself")
    assert csv.read_bytes() == before and not csv.with_suffix(".json").exists()


@pytest.mark.parametrize("mode", ["decovnet", "da-cmil-volumes", "lobe-patch"])
def test_out_that_cannot_be_created_is_refused_before_any_work(mode, cohort):
    csv = cohort / "cases.csv"
    csv.write_text(rows(mode, [1, 0, 1, 0]))
    out = cohort / "notes.txt" / "w.pt"
    assert_refused(run(mode, csv, cohort, out), mode, out, "notes.txt is a file, not a folder")


@pytest.mark.parametrize("mode,weights,fragment", [
    ("decovnet", "notes.txt", "--init: not a PyTorch weights file"),
    ("decovnet", "nope.pt", "--init: does not exist"),
    ("da-cmil-volumes", "notes.txt", "--init: not a PyTorch weights file"),
    ("da-cmil-volumes", "nope.pt", "--init: does not exist"),
])
def test_a_bad_init_file_is_refused_before_any_work(mode, weights, fragment, cohort, tmp_path):
    csv = cohort / "cases.csv"
    csv.write_text(rows(mode, [1, 0, 1, 0]))
    proc = run(mode, csv, cohort, tmp_path / "out" / "w.pt", "--init", str(cohort / weights))
    assert_refused(proc, mode, cohort / weights, fragment, tmp_path / "out")
    assert "prepared" not in proc.stdout and "volume bags" not in proc.stdout


def test_decovnet_refuses_a_validation_draw_that_leaves_one_class(cohort, tmp_path):
    """Two CTs: the 15 % drawn for validation take one, and a classifier would be trained on a single class."""
    csv = cohort / "cases.csv"
    csv.write_text(rows("decovnet", [1, 0]))
    assert_refused(run("decovnet", csv, cohort, tmp_path / "out" / "w.pt"), "decovnet", csv,
                   "left to train on once 15% are drawn for validation", tmp_path / "out")


@pytest.mark.parametrize("script,options", [
    ("train_slice_resnet", ["--epochs", "1"]),
    ("train_cvae_netvlad", ["--epochs", "1"]),
])
def test_scripts_without_a_cohort_check_out_first(script, options, tmp_path):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "w.pt"
    proc = subprocess.run([sys.executable, str(SCRIPTS / f"{script}.py"), *options, "--data", str(tmp_path / "none"),
                           "--cache", str(tmp_path / "cache"), "--out", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert_refused(proc, script, out, "is a file, not a folder")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("mode,ready", [("decovnet", "epoch 1:"), ("da-cmil-images", '"epoch": 1,')])
def test_ctrl_c_exits_130_and_leaves_no_out_file(mode, ready, cohort, tmp_path):
    """SIGINT while training: one line, exit status 130, neither OUT nor OUT.json nor a temporary file."""
    csv = cohort / "cases.csv"
    csv.write_text(rows(mode, [1, 0, 1, 0]))
    script, cohort_options, fast = MODES[mode]
    out = tmp_path / "out" / "w.pt"
    fast = list(fast)
    fast[fast.index("--epochs") + 1] = "500"
    command = [sys.executable, "-u", str(SCRIPTS / f"{script}.py"), *cohort_options(csv, cohort), *fast,
               "--out", str(out)] + ([] if mode == "decovnet" else ["--cache", str(tmp_path / "cache")])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.time() + 60
        for line in proc.stdout:
            if ready in line or time.time() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines() == [f"{script}: interrupted"], err[-2000:]
    assert not out.parent.exists() or not any(out.parent.iterdir()), sorted(out.parent.iterdir())


def test_lobe_patch_cohort_cache_follows_the_cohort(cohort, tmp_path, monkeypatch):
    """The prepared-cohort cache is named by the cohort's files and labels: an edited CSV of the same name is
    prepared anew (before: ``cohort-<CSV name>.npz``, reused whatever the CSV listed)."""
    from CovidCTAnalysis.classifiers.lobe_patch import train as lobe_train

    seen = []
    monkeypatch.setattr(lobe_train, "build_cache", lambda items, path, *a, **k: seen.append((items, path)) or {})
    csv = cohort / "cases.csv"
    for labels in ([1, 0, 1, 0], [1, 0, 0, 0]):
        csv.write_text(rows("lobe-patch", labels))
        lobe_train.prepared(None, tmp_path / "cache", cohort=csv, trunk_name="vgg")
    assert [y for _, y in seen[0][0]] == [1, 0, 1, 0] and [y for _, y in seen[1][0]] == [1, 0, 0, 0]
    assert seen[0][1] != seen[1][1] and seen[0][1].parent == tmp_path / "cache"
