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
