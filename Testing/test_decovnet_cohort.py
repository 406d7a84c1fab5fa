"""Reading a user's cohort for DeCoVNet training: a folder of CTs and a labels CSV."""

import pytest

from CovidCTAnalysis.classifiers.decovnet.cohort import read_cohort
from CovidCTAnalysis.errors import InputError


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(b"x")
    (tmp_path / "b.nrrd").write_bytes(b"x")
    (tmp_path / "series").mkdir()
    return tmp_path


def _csv(folder, text):
    path = folder / "labels.csv"
    path.write_text(text)
    return path


def test_reads_paths_labels_and_splits(folder):
    csv = _csv(folder, "Path,Label,split,age\na.nii.gz,COVID-19,train,50\nb.nrrd,0,test,40\nseries,negative,,33\n\n")
    items = read_cohort(folder, csv)
    assert [(i.path.name, i.label, i.split) for i in items] == [("a.nii.gz", 1, "train"), ("b.nrrd", 0, "test"),
                                                                ("series", 0, None)]


def test_absolute_paths_and_no_split_column(folder, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "c.mha"
    other.write_bytes(b"x")
    items = read_cohort(folder, _csv(folder, f"path,label\n{other},positive\na.nii.gz,non-COVID\n"))
    assert [(i.path, i.label, i.split) for i in items] == [(other, 1, None), (folder / "a.nii.gz", 0, None)]


@pytest.mark.parametrize("text,message", [
    ("file,label\na.nii.gz,1\n", "columns path and label"),
    ("path,label\na.nii.gz,maybe\n", "row 2 has the label 'maybe'"),
    ("path,label\nmissing.nii.gz,1\n", "does not exist"),
    ("path,label\na.nii.gz,1\n./a.nii.gz,0\n", "row 3 lists ./a.nii.gz a second time"),
    ("path,label,split\na.nii.gz,1,holdout\n", "split 'holdout'"),
    ("path,label\n", "lists no CT"),
    ("path,label\n,1\n", "row 2 has no path"),
])
def test_bad_csv_is_one_clear_input_error(folder, text, message):
    with pytest.raises(InputError, match=message):
        read_cohort(folder, _csv(folder, text))


def test_missing_folder_or_csv(folder):
    with pytest.raises(InputError, match="cohort folder"):
        read_cohort(folder / "nope", folder / "labels.csv")
    with pytest.raises(InputError, match="labels CSV does not exist"):
        read_cohort(folder, folder / "labels.csv")


def test_training_script_on_a_cohort_with_lungs_unet_masks(tmp_path):
    """scripts/train_decovnet.py --cohort with §II-F1's lung masks (lungs-unet): trains, writes the fp16 weights and
    a log that names the lung model and keeps the validation predictions a calibration would be fitted on."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import SimpleITK as sitk

    from CovidCTAnalysis.demo import make_demo_ct

    rows = ["path,label,split"]
    for i, (seed, lesions, split) in enumerate([(1, True, "train"), (1, False, "train"), (2, True, "val"),
                                                (2, False, "val")]):
        sitk.WriteImage(make_demo_ct(size=(64, 64, 24), seed=seed, lesions=lesions).image, str(tmp_path / f"c{i}.nrrd"))
        rows.append(f"c{i}.nrrd,{int(lesions)},{split}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    script = Path(__file__).resolve().parents[1] / "scripts" / "train_decovnet.py"
    out = tmp_path / "w.pt"
    proc = subprocess.run([sys.executable, str(script), "--cohort", str(tmp_path), "--labels",
                           str(tmp_path / "labels.csv"), "--lungs", "lungs-unet", "--in-plane", "32,48", "--z-mm", "10",
                           "--epochs", "1", "--lr", "1e-3", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = json.loads(out.with_suffix(".json").read_text())
    assert log["config"]["lungs"] == "lungs-unet" and log["config"]["device"] == "cpu"
    assert log["history"]["train"] == 2 and log["history"]["validation"] == 2
    assert log["history"]["validation_predictions"]["labels"] == [1, 0]
    assert log["parameters"] == 534530 and out.stat().st_size > 0
