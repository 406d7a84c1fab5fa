"""Malformed input through the real command: exit 2, one line on stderr naming the file, nothing written, input intact.

Each case builds its bad input in a temporary folder, hashes it, runs `covidct`, and checks the contract of
docs/CONTRACTS.md ('Exit status').
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from conftest import sha256_tree


def _volume(path: Path, array=None, spacing=(1.0, 1.0, 2.0)) -> Path:
    arr = np.random.default_rng(0).normal(-500, 300, (8, 16, 16)).astype(np.int16) if array is None else array
    img = sitk.GetImageFromArray(arr)
    if img.GetDimension() == 3:
        img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))
    return path


def _dicom(path: Path, modality: str = "CT") -> Path:
    img = sitk.GetImageFromArray(np.full((16, 16), -1000, np.int16) + np.arange(16, dtype=np.int16))
    img.SetMetaData("0008|0060", modality)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(path))
    writer.Execute(img)
    return path


def _mha_header(path: Path, dims: str, spacing: str) -> Path:
    path.write_text(
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        f"ElementSpacing = {spacing}\nDimSize = {dims}\nElementType = MET_SHORT\nElementDataFile = LOCAL\n"
    )
    with open(path, "ab") as f:
        f.write(b"\0" * 2 * 16 * 16 * 4)
    return path


def case_missing(tmp):
    return [tmp / "nowhere.nii.gz"], "nowhere.nii.gz"


def case_empty_file(tmp):
    p = tmp / "empty.nii.gz"
    p.write_bytes(b"")
    return [p], p.name


def case_truncated_nifti(tmp):
    p = _volume(tmp / "cut.nii.gz")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return [p], p.name


def case_gzip_of_garbage(tmp):
    p = tmp / "garbage.nii.gz"
    p.write_bytes(gzip.compress(b"not a nifti header at all" * 40))
    return [p], p.name


def case_text_named_dcm(tmp):
    p = tmp / "notes.dcm"
    p.write_text("this is a text file, not DICOM\n")
    return [p], p.name


def case_dicom_without_pixels(tmp):
    p = _dicom(tmp / "nopixels.dcm")
    data = p.read_bytes()
    p.write_bytes(data[: data.rindex(b"\xe0\x7f\x10\x00")])  # cut at the (7FE0,0010) Pixel Data element
    return [p], p.name


def case_mr_not_ct(tmp):
    p = _dicom(tmp / "brain.dcm", modality="MR")
    return [p], p.name


def case_mr_series_folder(tmp):
    folder = tmp / "mrseries"
    folder.mkdir()
    img = sitk.GetImageFromArray(np.zeros((3, 16, 16), np.int16))
    for k in range(3):
        s = img[:, :, k]
        s.SetMetaData("0008|0060", "MR")
        s.SetMetaData("0020|0013", str(k + 1))
        s.SetMetaData("0020|0032", f"0\\0\\{k}")
        s.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1.99")
        sitk.WriteImage(s, str(folder / f"{k}.dcm"))
    return [folder], folder.name


def case_4d_volume(tmp):
    p = tmp / "four.nii.gz"
    img = sitk.JoinSeries([sitk.Image(32, 32, 16, sitk.sitkInt16)] * 3)
    sitk.WriteImage(img, str(p))
    return [p], p.name


def case_vector_volume(tmp):
    p = tmp / "rgbvolume.nrrd"
    sitk.WriteImage(sitk.Image([8, 8, 8], sitk.sitkVectorUInt8, 3), str(p))
    return [p], p.name


def case_zero_spacing(tmp):
    return [_mha_header(tmp / "zero.mha", "16 16 4", "1 0 1")], "zero.mha"


def case_negative_spacing(tmp):
    return [_mha_header(tmp / "negative.mha", "16 16 4", "1 -1 1")], "negative.mha"


def case_absurd_size(tmp):
    return [_mha_header(tmp / "huge.mha", "100000 100000 100000", "1 1 1")], "huge.mha"


def case_nan_voxels(tmp):
    arr = np.full((8, 16, 16), -800, np.float32)
    arr[3, 4, 5] = np.nan
    return [_volume(tmp / "nan.nii.gz", arr)], "nan.nii.gz"


def case_inf_voxels(tmp):
    arr = np.full((8, 16, 16), -800, np.float32)
    arr[2, 2, 2] = np.inf
    return [_volume(tmp / "inf.nrrd", arr)], "inf.nrrd"


def case_constant_image(tmp):
    return [_volume(tmp / "flat.nii.gz", np.full((8, 16, 16), -1000, np.int16))], "flat.nii.gz"


def case_unsupported_extension(tmp):
    p = tmp / "scan.xyz"
    p.write_bytes(b"\0" * 64)
    return [p], p.name


def case_empty_folder(tmp):
    folder = tmp / "nothing"
    folder.mkdir()
    return [folder], folder.name


def case_mixed_folder(tmp):
    folder = tmp / "mixed"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    _volume(folder / "a.nii.gz")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "1.png")
    return [folder], folder.name


def case_stack_of_unequal_slices(tmp):
    folder = tmp / "stack"
    folder.mkdir()
    for k, size in enumerate((32, 32, 40), start=1):
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (size, size), np.uint8)).save(folder / f"{k}.png")
    return [folder], "3.png"


def case_corrupt_png(tmp):
    p = tmp / "slice.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(40))
    return [p], p.name


def case_tiny_png(tmp):
    p = tmp / "dot.png"
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(p)
    return [p], p.name


def case_unreadable_file(tmp):
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop reading")
    p = _volume(tmp / "locked.nii.gz")
    p.chmod(0)
    return [p], p.name


# -- issue 24: hostile inputs ----------------------------------------------------------------------------------------
def _detached(tmp, data_file: str) -> Path:
    """A MetaImage header whose data file is ``data_file`` (its own .raw written beside it first)."""
    ok = _volume(tmp / "ok.mhd")
    header = tmp / "ct.mhd"
    header.write_text(ok.read_text().replace("ElementDataFile = ok.raw", f"ElementDataFile = {data_file}"))
    ok.unlink()
    return header


def case_header_names_a_device(tmp):
    return [_detached(tmp, "/dev/urandom")], "ct.mhd"


def case_header_names_a_fifo(tmp):
    os.mkfifo(tmp / "pipe")
    return [_detached(tmp, "pipe")], "ct.mhd"


def case_header_names_a_file_elsewhere(tmp):
    return [_detached(tmp, "../../elsewhere.raw")], "ct.mhd"


def case_nrrd_header_names_a_device(tmp):
    p = _volume(tmp / "ok.nhdr")
    header = tmp / "ct.nhdr"
    header.write_text(p.read_text().replace("data file: ok.raw", "data file: /dev/zero"))
    return [header], "ct.nhdr"


def case_values_of_1e300(tmp):
    arr = np.random.default_rng(0).normal(-500, 300, (8, 16, 16))
    arr[0, 0, :2] = (1e300, -1e300)
    return [_volume(tmp / "huge.nii.gz", arr)], "huge.nii.gz"


def case_nifti_sform_of_nan(tmp):
    p = _volume(tmp / "plain.nii")
    raw = bytearray(p.read_bytes())
    raw[254:256] = (1).to_bytes(2, "little")  # sform_code 1, srow_x/y/z NaN
    raw[280:328] = np.full(12, np.nan, "<f4").tobytes()
    p.write_bytes(bytes(raw))
    return [p], p.name


def case_symlink_loop(tmp):
    p = tmp / "loop.nii.gz"
    p.symlink_to(p)
    return [p], p.name


def case_dicom_series_without_positions_or_thickness(tmp):
    from test_io_dicom import _drop_tag, _volume as _dicom_volume, write_series

    files = write_series(tmp / "series", _dicom_volume())
    _drop_tag(files, 0x0020, 0x0032)
    _drop_tag(files, 0x0018, 0x0050)
    _drop_tag(files, 0x0018, 0x0088, required=False)
    return [tmp / "series"], "series: has no slice positions"


def case_gantry_tilted_dicom_series(tmp):
    from test_io_dicom import _volume as _dicom_volume, write_slice

    folder = tmp / "tilted"
    folder.mkdir()
    for k, hu in enumerate(_dicom_volume()):
        write_slice(folder / f"IM{k:04d}", hu, z=2.5 * k, y=np.tan(np.radians(20.0)) * 2.5 * k, number=k + 1)
    return [folder], "tilted: is a gantry-tilted series"


CASES = {name[5:]: fn for name, fn in dict(globals()).items() if name.startswith("case_")}


def run_covidct(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "CovidCTAnalysis", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)


def assert_clean_failure(proc: subprocess.CompletedProcess, names: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert names in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_analyze_refuses_bad_input(case, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    inputs, names = CASES[case](src)
    before = sha256_tree(src)
    out = tmp_path / "out"
    proc = run_covidct("analyze", *inputs, "-o", out)
    assert_clean_failure(proc, names)
    assert not out.exists(), "a failed run must not leave an output folder"
    assert sha256_tree(src) == before


def test_output_inside_a_regular_file(tmp_path):
    src = _volume(tmp_path / "ct.nii.gz")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_covidct("segment-lungs", src, "-o", blocker / "lungs.nii.gz")
    assert_clean_failure(proc, "file")


def test_output_equal_to_input(tmp_path):
    src = _volume(tmp_path / "ct.nii.gz")
    before = sha256_tree(src)
    proc = run_covidct("segment-lungs", src, "-o", src)
    assert_clean_failure(proc, "ct.nii.gz")
    assert sha256_tree(src) == before


def test_output_folder_is_an_existing_file(tmp_path):
    src = _volume(tmp_path / "ct.nii.gz")
    proc = run_covidct("analyze", src, "-o", src)
    assert_clean_failure(proc, "ct.nii.gz")


def test_output_with_unknown_extension(tmp_path):
    src = _volume(tmp_path / "ct.nii.gz")
    proc = run_covidct("segment-lungs", src, "-o", tmp_path / "lungs.jpg2")
    assert_clean_failure(proc, "lungs.jpg2")
    assert not (tmp_path / "lungs.jpg2").exists()


@pytest.mark.parametrize("args,words", [
    (["analyze", "--demo", "-o", "X", "--spacing", "1,2"], "--spacing"),
    (["analyze", "--demo", "-o", "X", "--window", "0,-600"], "--window"),
    (["analyze", "--demo", "-o", "X", "--demo-size", "4000,10,10"], "--demo-size"),
    (["analyze", "--demo", "-o", "X", "--demo-seed", "-1"], "--demo-seed"),
    (["analyze", "--demo", "-o", "X", "--window", "1e308,0"], "outside the HU scale"),
    (["analyze", "--demo", "-o", "loop"], "symbolic link loop"),
    (["analyze", "-o", "X"], "INPUT or --demo"),
    (["analyze", "--demo", "-o", "X", "--models", "resnet-1000"], "unknown model"),
    (["classify", "--model", "lesions-unet", "a.png", "-o", "X.csv"], "not a classifier"),
    (["classify", "--model", "slice-resnet", "a.png", "-o", "X.txt"], "unknown output extension"),
    (["segment-lesions", "a.png", "-o", "X.png", "--model", "lungs-classic"], "lesion model"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_are_one_line(args, words, tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    proc = run_covidct(*args, cwd=tmp_path)
    assert_clean_failure(proc, words)
    assert not (tmp_path / "X").exists() and not (tmp_path / "X.csv").exists()


@pytest.mark.parametrize("args", [
    ["analyze", "--demo", "-o", "X", "--models", "lobe-patch"],
    ["classify", "--model", "lobe-patch", "a.png", "-o", "X.csv"],
    ["segment-lesions", "a.png", "-o", "X.png", "--model", "lobe-patch"],
])
def test_a_model_this_installation_lacks_is_refused_in_one_line(args, tmp_path):
    """A registry without lobe-patch (an installation that does not ship it) refuses it by name, writing nothing."""
    import json

    models = Path(__file__).resolve().parents[1] / "Resources" / "Models"
    data = json.loads((models / "registry.json").read_text(encoding="utf-8"))
    data["models"] = [m for m in data["models"] if m["name"] != "lobe-patch"]
    for m in data["models"]:
        for key in ("weights", "card"):
            if m.get(key):
                m[key] = str(models / m[key])
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "registry.json").write_text(json.dumps(data), encoding="utf-8")
    proc = run_covidct(*args, cwd=tmp_path, env=dict(os.environ, COVIDCT_MODELS=str(folder)))
    assert_clean_failure(proc, "not available in this version")
    assert not (tmp_path / "X").exists() and not (tmp_path / "X.csv").exists()


@pytest.mark.parametrize("command", ["segment-lungs", "analyze"])
def test_a_volume_without_lungs_is_refused_naming_the_file(command, tmp_path):
    """Issue 24: 'no lungs found' said what, not which file."""
    arr = np.random.default_rng(1).normal(40, 20, (30, 32, 32)).astype(np.int16)  # soft tissue, 60 mm deep
    src = _volume(tmp_path / "abdomen.nii.gz", arr, spacing=(2.0, 2.0, 2.0))
    out = tmp_path / ("out.nii.gz" if command == "segment-lungs" else "out")
    proc = run_covidct(command, src, "-o", out)
    assert_clean_failure(proc, "abdomen.nii.gz: no lungs found")
    assert not out.exists()


def test_a_reader_that_leaves_early_is_not_an_internal_error():
    """`covidct models | head -1`: stdout closed before the command writes; exit 141, nothing on stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "CovidCTAnalysis", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # before the interpreter has started: its first write meets a closed pipe
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert err == b""
