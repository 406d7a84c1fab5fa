"""DICOM files and series (CovidCTAnalysis/io/dicom.py) on small synthetic files written with SimpleITK/GDCM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import sha256_tree

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.io import load_ct, to_input_grid

ROWS, COLS = 20, 24


def write_slice(path: Path, hu: np.ndarray, *, z: float, uid: str = "1.2.826.0.1.3680043.2.1125.7",
                modality: str | None = "CT", spacing=(0.7, 0.8), thickness: float = 2.5, slope: float = 1.0,
                intercept: float = -1024.0, orientation: str = "1\\0\\0\\0\\1\\0", number: int = 1,
                y: float = -20.0, extra: dict | None = None) -> None:
    """One DICOM slice holding ``hu`` (rows, cols) via rescale slope/intercept, GDCM-written."""
    img = sitk.GetImageFromArray(hu.astype(np.float32)[None])
    img.SetSpacing((spacing[0], spacing[1], thickness))
    tags = {"0020|000e": uid, "0020|000d": "1.2.826.0.1.3680043.2.1125.1", "0020|0032": f"-10\\{y:g}\\{z:g}",
            "0020|0037": orientation, "0020|0013": str(number), "0018|0050": f"{thickness:g}",
            "0028|1052": f"{intercept:g}", "0028|1053": f"{slope:g}", "0028|0100": "16", "0028|0101": "16",
            "0028|0102": "15", "0028|0103": "1", "0010|0010": "Doe^Jane", "0008|0018": f"{uid}.{number}"}
    if modality:
        tags["0008|0060"] = modality
    tags.update(extra or {})
    for key, value in tags.items():
        img.SetMetaData(key, value)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(path))
    writer.Execute(img)


def write_series(folder: Path, volume: np.ndarray, *, zs=None, prefix="", **kw) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    zs = [30.0 + 2.5 * k for k in range(len(volume))] if zs is None else zs
    paths = []
    for k, (hu, z) in enumerate(zip(volume, zs)):
        p = folder / f"{prefix}IM{k:04d}"  # no extension, like many scanners
        write_slice(p, hu, z=z, number=k + 1, **kw)
        paths.append(p)
    return paths


def _volume(n=6, seed=0) -> np.ndarray:
    v = np.random.default_rng(seed).integers(-1000, 1000, (n, ROWS, COLS)).astype(np.float32)
    v[:, 0, 0] = -1000
    return v


def assert_refused(path: Path, *words: str) -> str:
    before = sha256_tree(path)
    with pytest.raises(InputError) as info:
        load_ct(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    for w in words:
        assert w.lower() in message.lower(), message
    assert sha256_tree(path) == before
    return message


def test_series_values_geometry_and_slice_files(tmp_path):
    vol = _volume()
    files = write_series(tmp_path / "s", vol)
    ct = load_ct(tmp_path / "s")
    assert ct.kind == "dicom-series" and ct.modality == "CT"
    assert ct.size == (COLS, ROWS, 6) and ct.spacing == pytest.approx((0.7, 0.8, 2.5))
    assert ct.image.GetOrigin() == pytest.approx((-10, -20, 30))
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(ct.image), vol)
    assert list(ct.slice_files) == files  # z grows superior, so does the position
    back = to_input_grid(ct.image, ct)
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(back), vol)


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    vol = _volume() / 2.0  # half-HU steps need slope 0.5
    write_series(tmp_path / "s", vol, slope=0.5, intercept=-2048)
    ct = load_ct(tmp_path / "s")
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(ct.image), vol)


def test_series_written_top_down_is_canonical(tmp_path):
    vol = _volume()
    zs = [100.0 - 2.5 * k for k in range(6)]  # file 0 most superior
    files = write_series(tmp_path / "s", vol, zs=zs)
    ct = load_ct(tmp_path / "s")
    a = sitk.GetArrayViewFromImage(ct.image)
    np.testing.assert_allclose(a[-1], vol[0])  # canonical z grows superior
    assert ct.slice_files[-1] == files[0]


def test_several_series_take_the_largest_and_say_so(tmp_path):
    write_series(tmp_path / "s", _volume(3), uid="1.2.3.111", prefix="a")
    write_series(tmp_path / "s", _volume(7, seed=1), uid="1.2.3.222", prefix="b")
    ct = load_ct(tmp_path / "s")
    assert ct.size[2] == 7
    assert "2 series in folder; used 1.2.3.222 (7 slices)" in ct.notes


def test_mr_series_is_refused_by_name(tmp_path):
    write_series(tmp_path / "mr", _volume(3), modality="MR")
    assert_refused(tmp_path / "mr", "modality MR, not CT")


def test_mr_file_is_refused_by_name(tmp_path):
    write_slice(tmp_path / "mr.dcm", _volume(1)[0], z=0, modality="MR")
    assert_refused(tmp_path / "mr.dcm", "modality MR, not CT")


def test_ct_series_next_to_mr_series_is_used(tmp_path):
    write_series(tmp_path / "s", _volume(8), modality="MR", uid="1.2.3.9", prefix="m")
    write_series(tmp_path / "s", _volume(4), uid="1.2.3.8", prefix="c")
    assert load_ct(tmp_path / "s").size[2] == 4


def test_single_file_is_a_one_slice_volume(tmp_path):
    hu = _volume(1)[0]
    write_slice(tmp_path / "one.dcm", hu, z=12.0, thickness=3.0)
    ct = load_ct(tmp_path / "one.dcm")
    assert ct.kind == "dicom-file" and ct.is_2d and ct.size == (COLS, ROWS, 1)
    assert ct.spacing == pytest.approx((0.7, 0.8, 3.0))  # slice thickness, not GDCM's 1 mm
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(ct.image)[0], hu)
    assert load_ct(tmp_path / "one.dcm", spacing=(1, 1, 1.25)).spacing[2] == pytest.approx(1.25)


def test_single_file_without_a_thickness_is_assumed_5_mm_and_says_so(tmp_path):
    """As every 2-D image without a thickness: not GDCM's silent 1 mm, which made its mL a fifth of a PNG's."""
    write_slice(tmp_path / "one.dcm", _volume(1)[0], z=12.0, extra={"0018|0050": ""})
    ct = load_ct(tmp_path / "one.dcm")
    assert ct.spacing[2] == pytest.approx(5.0)
    assert any("without a slice thickness: assumed 5 mm" in n for n in ct.notes), ct.notes


def test_single_coronal_file_is_a_picture_of_its_plane(tmp_path):
    """Issue 18: one coronal slice is analysed as a 2-D picture (head at the top), and results go back exactly."""
    hu = _volume(1)[0]
    write_slice(tmp_path / "cor.dcm", hu, z=0.0, orientation="1\\0\\0\\0\\0\\-1")
    ct = load_ct(tmp_path / "cor.dcm")
    assert ct.is_2d and ct.picture_plane == "coronal" and ct.size == (COLS, ROWS, 1) and ct.slice_files == ()
    # the file's rows run from head to feet (column direction 0\0\-1): the picture keeps them so
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(ct.image)[0], hu)
    assert ct.spacing[2] == pytest.approx(ct.input_spacing[2]) and any("coronal slice" in n for n in ct.notes)
    back = to_input_grid(ct.image, ct)
    assert back.GetSize() == (COLS, ROWS, 1)
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(back)[0], hu)


def test_missing_modality_with_ct_sop_class_is_accepted(tmp_path):
    """Like lungmask's test slices: no (0008,0060), SOP class CT Image Storage."""
    write_slice(tmp_path / "full.dcm", _volume(1)[0], z=0.0)
    data = (tmp_path / "full.dcm").read_bytes()
    element = b"\x08\x00\x60\x00\x02\x00\x00\x00CT"  # (0008,0060) "CT", GDCM writes implicit VR little endian
    assert data.count(element) == 1 and b"1.2.840.10008.5.1.4.1.1.2\x00" in data
    (tmp_path / "x.dcm").write_bytes(data.replace(element, b""))
    ct = load_ct(tmp_path / "x.dcm")
    assert ct.modality == "CT"
    assert any("no modality" in n for n in ct.notes)


def test_text_file_named_dcm(tmp_path):
    (tmp_path / "fake.dcm").write_text("this is a text file, not DICOM\n")
    assert_refused(tmp_path / "fake.dcm", "not a DICOM file")


def test_dicom_without_pixel_data(tmp_path):
    write_slice(tmp_path / "full.dcm", _volume(1)[0], z=0.0)
    data = (tmp_path / "full.dcm").read_bytes()
    (tmp_path / "nopix.dcm").write_bytes(data[: data.rfind(b"\xe0\x7f\x10\x00")])
    assert_refused(tmp_path / "nopix.dcm", "without pixel data")


def test_truncated_pixel_data(tmp_path):
    write_slice(tmp_path / "full.dcm", _volume(1)[0], z=0.0)
    data = (tmp_path / "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: data.rfind(b"\xe0\x7f\x10\x00") + 100])
    assert_refused(tmp_path / "cut.dcm", "could not be decoded")


def test_uneven_slices_are_refused(tmp_path):
    write_series(tmp_path / "s", _volume(6), zs=[0, 2.5, 5, 7.5, 12.5, 15])
    assert_refused(tmp_path / "s", "unevenly spaced", "missing slices")


def test_duplicate_positions_are_refused(tmp_path):
    write_series(tmp_path / "s", _volume(4), zs=[0, 2.5, 2.5, 5])
    assert_refused(tmp_path / "s", "same position")


def test_slices_of_different_sizes_are_refused(tmp_path):
    write_series(tmp_path / "s", _volume(3))
    write_slice(tmp_path / "s" / "odd", np.zeros((30, 30), np.float32) - 1000, z=50.0, number=9)
    assert_refused(tmp_path / "s", "could not be read")


def test_rgb_secondary_capture_is_refused(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (1, ROWS, COLS, 3)).astype(np.uint8)
    img = sitk.GetImageFromArray(rgb, isVector=True)
    img.SetMetaData("0008|0060", "CT")
    sitk.WriteImage(img, str(tmp_path / "sc.dcm"))
    assert_refused(tmp_path / "sc.dcm", "3 values per pixel")


def test_output_carries_no_dicom_tags(tmp_path):
    write_series(tmp_path / "s", _volume(3))
    ct = load_ct(tmp_path / "s")
    assert ct.image.GetMetaDataKeys() == ()
    assert to_input_grid(ct.image, ct).GetMetaDataKeys() == ()


def test_zero_pixel_spacing_is_refused(tmp_path):
    write_slice(tmp_path / "full.dcm", _volume(1)[0], z=0.0)
    data = (tmp_path / "full.dcm").read_bytes()
    spacing = b"\x28\x00\x30\x00\x06\x00\x00\x00.8\\.7 "  # (0028,0030) Pixel Spacing (rows\\columns), implicit VR
    assert data.count(spacing) == 1
    (tmp_path / "zero.dcm").write_bytes(data.replace(spacing, spacing[:8] + b"00\\00 "))
    assert_refused(tmp_path / "zero.dcm", "spacing")


# -- geometry you can trust (issue 24) ------------------------------------------------------------------------------
def _drop_tag(files, group: int, element: int, required: bool = True) -> None:
    """Rename a tag of each (implicit VR little endian) file to the next element number: the reader no longer sees
    it, the file stays valid."""
    key = group.to_bytes(2, "little") + element.to_bytes(2, "little")
    for f in files:
        raw = f.read_bytes()
        at = raw.find(key, 132)
        if at < 0 and not required:
            continue
        assert at > 0, f"tag ({group:04x},{element:04x}) not found in {f}"
        f.write_bytes(raw[:at] + group.to_bytes(2, "little") + (element + 1).to_bytes(2, "little") + raw[at + 4:])


def test_series_without_positions_uses_the_slice_thickness_with_a_warning(tmp_path):
    """GDCM stacks such slices 1 mm apart (volumes 2.5 times too small here); we use Slice Thickness and say so."""
    vol = _volume()
    write_series(tmp_path / "with", vol)
    files = write_series(tmp_path / "without", vol)
    _drop_tag(files, 0x0020, 0x0032)
    a, b = load_ct(tmp_path / "with"), load_ct(tmp_path / "without")
    assert b.spacing == pytest.approx(a.spacing)
    assert np.array_equal(sitk.GetArrayFromImage(a.image), sitk.GetArrayFromImage(b.image))
    assert not a.warnings
    assert len(b.warnings) == 1 and "no position" in b.warnings[0] and "2.5 mm" in b.warnings[0]


def test_series_without_positions_or_thickness_is_refused(tmp_path):
    files = write_series(tmp_path / "s", _volume())
    _drop_tag(files, 0x0020, 0x0032)
    _drop_tag(files, 0x0018, 0x0050)
    _drop_tag(files, 0x0018, 0x0088, required=False)  # GDCM's writer adds it after a series was read
    assert_refused(tmp_path / "s", "no slice positions", "distance between its slices is unknown")


def test_gantry_tilted_series_is_refused(tmp_path):
    """Positions sheared 15 degrees against the slices' normal, as a tilted gantry writes them."""
    vol, folder = _volume(), tmp_path / "tilted"
    folder.mkdir()
    for k, hu in enumerate(vol):
        z = 30.0 + 2.5 * k
        write_slice(folder / f"IM{k:04d}", hu, z=z, y=-20.0 + np.tan(np.radians(15.0)) * 2.5 * k, number=k + 1,
                    extra={"0018|1120": "15"})
    assert_refused(folder, "gantry-tilted", "15.0 degrees", "(0018,1120) 15 degrees", "dcm2niix")


def test_analyze_reports_the_assumed_slice_spacing(tmp_path):
    """The warning reaches report.json (and report.html) of the real command."""
    import json
    import subprocess
    import sys

    vol = np.full((12, 40, 40), 40.0, np.float32)
    vol[:, 8:32, 6:18] = -850.0  # two lungs in a body
    vol[:, 8:32, 22:34] = -850.0
    files = write_series(tmp_path / "s", vol, spacing=(8.0, 8.0), thickness=10.0)
    _drop_tag(files, 0x0020, 0x0032)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "analyze", tmp_path / "s", "-o", out,
                           "--models", "decovnet", "--device", "cpu"], capture_output=True, text=True, timeout=600)
    report = json.loads((out / "report.json").read_text(encoding="utf-8")) if proc.returncode == 0 else None
    assert report is not None, proc.stderr
    assert report["input"]["spacing_mm"][2] == pytest.approx(10.0)
    assert any("no position" in w and "10 mm" in w for w in report["warnings"]), report["warnings"]
