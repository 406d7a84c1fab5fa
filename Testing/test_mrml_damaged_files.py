"""Damaged result files (a truncated mask, a partly copied analysis folder) refused with one line naming the file.

The segmentation storage node aborts the whole process on a truncated .seg.nrrd or .nrrd (an ITK exception nobody
catches, exit status 134): in Slicer a crash that loses unsaved work, reached by importing a mask or loading an
analysis folder. NIfTI readers return the first voxels of a truncated .nii.gz without an error, so half a mask
would load silently. Every loader must refuse such a file with InputError before MRML reads it.

The loads run in a child process, so that an abort fails the test (with the child's exit status) instead of
ending the test run; the child then loads the intact file, proving the scene is still usable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("slicer")

import SimpleITK as sitk  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct  # noqa: E402
from CovidCTAnalysis.io import write_label_map, write_volume  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS, LUNG_SEGMENTS  # noqa: E402

pytestmark = pytest.mark.mrml

SIZE = (48, 48, 24)
REPO = Path(__file__).resolve().parents[1]

#: The child: load BAD (expected: InputError), then GOOD (expected: loads), print one JSON line.
CHILD = r"""
import json, shutil, sys
from pathlib import Path
from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.labels import LESION_SEGMENTS
from CovidCTAnalysis.mrml.heatmaps import load_heatmap
from CovidCTAnalysis.mrml.results import load_analysis
from CovidCTAnalysis.mrml.scene import new_scene
from CovidCTAnalysis.mrml.segmentations import load_segmentation
from CovidCTAnalysis.mrml.volumes import load_volume

loader, ct_path, bad, good = sys.argv[1:5]
report = {}
with new_scene() as headless:
    scene = headless.scene
    ct = load_volume(scene, ct_path, "CT")

    def load(path):
        if loader == "segmentation":
            return load_segmentation(scene, path, LESION_SEGMENTS, name="mask", reference_volume=ct)
        if loader == "heatmap":
            return load_heatmap(scene, path, "model", reference_volume=ct)
        if loader == "volume":
            return load_volume(scene, path)
        return load_analysis(scene, path, reference_volume=ct, show=False, closed_surfaces=False)

    before = scene.GetNumberOfNodes()
    try:
        load(bad)
        report["refused"] = None
    except InputError as exc:
        report["refused"] = {"path": exc.path, "message": str(exc)}
    report["nodes_left"] = scene.GetNumberOfNodes() - before
    report["intact_loads"] = load(good) is not None
print("RESULT " + json.dumps(report))
"""


def _truncate(source: Path, target: Path) -> Path:
    """A copy of ``source`` cut off halfway through its voxel data (a NRRD keeps its whole header)."""
    data = source.read_bytes()
    header = data.find(b"\n\n") + 2 if data.startswith(b"NRRD") else 0
    target.write_bytes(data[: header + (len(data) - header) // 2])
    return target


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A small demo CT and its results in several formats, each intact ("NAME") and truncated ("NAME bad")."""
    folder = tmp_path_factory.mktemp("damaged")
    case = make_demo_ct(size=SIZE, seed=3)
    assert sitk.GetArrayFromImage(case.lesions).any()
    made = {"ct": write_volume(case.image, folder / "ct.nrrd")}
    made["lesions.seg.nrrd"] = write_label_map(case.lesions, folder / "lesions.seg.nrrd", LESION_SEGMENTS)
    for suffix in (".nrrd", ".nii.gz", ".nii"):
        path = folder / f"lesions-plain{suffix}"
        sitk.WriteImage(case.lesions, str(path), suffix != ".nii")
        made[f"lesions{suffix}"] = path
    values = sitk.GetArrayFromImage(case.lesions).astype(np.float32) / 3.0
    heat = sitk.GetImageFromArray(values)
    heat.CopyInformation(case.image)
    made["heatmap.nrrd"] = write_volume(heat, folder / "heatmap.nrrd")
    made["heatmap.nii.gz"] = folder / "heatmap.nii.gz"
    sitk.WriteImage(heat, str(made["heatmap.nii.gz"]), True)
    bad = folder / "bad"
    bad.mkdir()
    for name, path in list(made.items()):
        if name != "ct":
            made[f"{name} bad"] = _truncate(path, bad / path.name)
    # an analysis folder, and the same folder copied only in part (its lesion file cut off)
    report = {"input": {"path": str(made["ct"]), "size": list(SIZE)},
              "lungs": {"right_ml": 1.0, "left_ml": 2.0, "total_ml": 3.0}, "lesions": None, "classifiers": {},
              "unavailable": {}}
    for name, lesions in (("analysis", made["lesions.seg.nrrd"]), ("analysis bad", made["lesions.seg.nrrd bad"])):
        out = folder / name.replace(" ", "-")
        out.mkdir()
        (out / "report.json").write_text(json.dumps(report), encoding="utf-8")
        write_label_map(case.lungs, out / "lungs.seg.nrrd", LUNG_SEGMENTS)
        (out / "lesions.seg.nrrd").write_bytes(lesions.read_bytes())
        made[name] = out
    return made


def _run_child(loader: str, files: dict[str, Path], name: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, loader, str(files["ct"]), str(files[f"{name} bad"]), str(files[name])],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    errors = [line for line in completed.stderr.splitlines() if "WARN|" not in line]
    assert completed.returncode == 0, (
        f"the loader did not survive {name} (exit status {completed.returncode}): {errors[-6:]}")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, completed.stdout[-1500:] + completed.stderr[-1500:]
    return json.loads(lines[-1][len("RESULT "):])


def _assert_refused(result: dict, path: Path, what: str) -> None:
    refused = result["refused"]
    assert refused is not None, f"{path.name}: the truncated file was loaded"
    assert refused["path"] == str(path)
    assert refused["message"] == f"{path}: " + refused["message"].split(": ", 1)[1]
    assert refused["message"].split(": ", 1)[1].startswith(f"damaged or unreadable {what}"), refused["message"]
    assert "\n" not in refused["message"]
    assert result["nodes_left"] == 0
    assert result["intact_loads"]


@pytest.mark.parametrize("name", ["lesions.seg.nrrd", "lesions.nrrd", "lesions.nii.gz", "lesions.nii"])
def test_truncated_mask_is_refused_and_the_process_survives(files, name):
    """Import a mask / a segmentation of the folder: a truncated label file is one InputError naming it."""
    result = _run_child("segmentation", files, name)
    _assert_refused(result, files[f"{name} bad"], "segmentation file")


@pytest.mark.parametrize("name", ["heatmap.nrrd", "heatmap.nii.gz"])
def test_truncated_heatmap_is_refused(files, name):
    """A truncated heatmap is refused as damaged (a NIfTI one would otherwise show half a heatmap)."""
    result = _run_child("heatmap", files, name)
    _assert_refused(result, files[f"{name} bad"], "volume file")


def test_truncated_volume_file_is_refused(files):
    """A CT or any volume file cut off: refused as damaged before the volume storage node reads it."""
    result = _run_child("volume", files, "lesions.nii.gz")
    _assert_refused(result, files["lesions.nii.gz bad"], "volume file")


def test_partly_copied_analysis_folder_is_refused_naming_the_damaged_file(files):
    """Loading an analysis folder whose lesions.seg.nrrd was copied only in part: one InputError naming that file,
    nothing of the analysis left in the scene, and the intact folder still loads afterwards."""
    result = _run_child("analysis", files, "analysis")
    _assert_refused(result, files["analysis bad"] / "lesions.seg.nrrd", "segmentation file")
