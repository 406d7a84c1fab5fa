"""`train_lesions.py --corrected` on bad datasets and options: one line naming the file, exit status 2, no traceback,
nothing written, inputs unchanged - all found before any training (docs/CONTRACTS.md, "Exit status")."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.lesions.corrected import read_corrected_folder

from conftest import load_script, sha256_tree

REPO = Path(__file__).resolve().parents[1]
LESIONS_UNET = REPO / "Resources" / "Models" / "lesions-unet" / "lesions-unet.pt"


def _write(array, path: Path, origin=(0.0, 0.0, 0.0), spacing=(0.8, 0.8, 2.0)) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path), useCompression=True)


def _case(root: Path, name: str) -> None:
    """A tiny chest CT (two air-filled lungs in a body) and its lesion mask, as a saved correction is."""
    hu = np.full((6, 40, 48), -1000.0, np.float32)
    hu[:, 4:36, 4:44], hu[:, 8:32, 8:22], hu[:, 8:32, 26:40] = 40.0, -850.0, -850.0
    labels = np.zeros(hu.shape, np.uint8)
    labels[2:4, 10:14, 10:14], labels[3, 20:24, 30:34] = 1, 2
    _write(hu, root / "images" / f"{name}.nii.gz")
    _write(labels, root / "masks" / f"{name}.nii.gz")


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "dataset"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    _case(root, "c1")
    return root


def _train(capsys, corrected: Path, out: Path, *extra: str) -> tuple[int, str]:
    """main() of the script with a tiny run; (exit status, stderr)."""
    pytest.importorskip("torch")
    script = load_script("train_lesions")
    argv = ["--corrected", str(corrected), "--data", str(corrected.parent / "no-semiseg"), "--iterations", "1",
            "--threads", "1", "--out", str(out), *extra]
    status = script.main(argv)
    return status, capsys.readouterr().err


def _refused(capsys, corrected, out, *extra, names: str) -> str:
    before = sha256_tree(corrected) if corrected.exists() else None
    status, err = _train(capsys, corrected, out, *extra)
    assert status == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err and names in err, err
    assert not out.is_file() and not out.with_suffix(".json").exists()
    assert not list(out.parent.glob(f".{out.name}*")) if out.parent.is_dir() else True  # no temporary file left
    assert before is None or sha256_tree(corrected) == before  # inputs never modified
    return err


def _mask_without_image(root):
    shutil.copy(root / "masks" / "c1.nii.gz", root / "masks" / "c2.nii.gz")
    return "masks/c2.nii.gz: has no image"


def _two_masks(root):
    shutil.copy(root / "masks" / "c1.nii.gz", root / "masks" / "c1.nrrd")
    return "second file of case 'c1'"


def _mask_elsewhere(root):
    mask = sitk.ReadImage(str(root / "masks" / "c1.nii.gz"))
    _write(sitk.GetArrayFromImage(mask), root / "masks" / "c1.nii.gz", origin=(30.0, 0.0, 0.0))
    return "masks/c1.nii.gz: is not on its image's grid (origin"


def _unknown_label(root):
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "masks" / "c1.nii.gz")))
    mask[mask == 2] = 5
    _write(mask, root / "masks" / "c1.nii.gz")
    return "masks/c1.nii.gz: has label values [1, 5]"


def _image_without_mask(root):
    (root / "masks" / "c1.nii.gz").unlink()
    return "images/c1.nii.gz: has no mask"


def _no_folders(root):
    shutil.rmtree(root / "images")
    shutil.rmtree(root / "masks")
    return "images: is missing"


@pytest.mark.parametrize("spoil", [_no_folders, _image_without_mask, _mask_without_image, _two_masks, _mask_elsewhere,
                                   _unknown_label])
def test_a_bad_dataset_is_refused_in_one_line_before_training(dataset, tmp_path, capsys, spoil):
    names = spoil(dataset)
    _refused(capsys, dataset, tmp_path / "out" / "w.pt", names=names)


def test_bad_init_and_out_are_refused_before_the_dataset_is_read(dataset, tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not weights")
    lungs = REPO / "Resources" / "Models" / "lungs-unet" / "lungs-unet.pt"
    out = tmp_path / "out" / "w.pt"
    _refused(capsys, dataset, out, "--init", str(tmp_path / "missing.pt"), names="missing.pt: weights for lesions-unet")
    _refused(capsys, dataset, out, "--init", str(text), names="notes.pt: not a weights file of lesions-unet")
    if lungs.is_file():
        _refused(capsys, dataset, out, "--init", str(lungs), names="lungs-unet.pt: these weights do not fit")
    # --out: a folder, under a file, the weights it starts from (which must stay as they are)
    _refused(capsys, dataset, tmp_path, names="is an existing folder")
    _refused(capsys, dataset, text / "w.pt", names="notes.pt is a file")
    init = tmp_path / "init.pt"
    shutil.copy(LESIONS_UNET, init)
    status, err = _train(capsys, dataset, init, "--init", str(init))
    assert status == 2 and "is the input itself" in err and init.read_bytes() == LESIONS_UNET.read_bytes()
    if LESIONS_UNET.is_file():  # --corrected without --init starts from the registered weights: never overwritten
        status, err = _train(capsys, dataset, LESIONS_UNET)
        assert status == 2 and "is the input itself" in err


def test_reader_skips_hidden_leftovers_and_reports_other_files(dataset):
    # what a killed save leaves (the atomic writer's hidden temporary file), macOS metadata, notes
    (dataset / "images" / ".c9.nii.gz.0123456789ab.tmp.nii.gz").write_bytes(b"\x1f\x8b cut off")
    (dataset / "images" / "._c1.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    (dataset / "images" / "notes.txt").write_text("reviewed by A")
    unused: list[Path] = []
    samples = read_corrected_folder(dataset, unused)
    assert {s.name.split("#")[0] for s in samples} == {"c1.nii.gz"}
    assert [p.name for p in unused] == ["notes.txt"]
    with pytest.raises(InputError, match="is not a folder"):
        read_corrected_folder(dataset / "images" / "c1.nii.gz")


def test_the_process_exits_2_with_one_line_and_writes_nothing(dataset, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "out" / "w.pt"
    _mask_without_image(dataset)
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "train_lesions.py"), "--corrected", str(dataset),
                          "--data", str(tmp_path / "none"), "--iterations", "1", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "c2.nii.gz" in run.stderr, run.stderr
    assert not out.parent.exists()
