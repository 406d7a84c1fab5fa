"""The corrected-masks folder reader (and the training script's fine-tuning mode) on tiny synthetic folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.lesions.constants import INFECTION_UNKNOWN_CLASS
from CovidCTAnalysis.lesions.corrected import read_corrected_folder

REPO = Path(__file__).resolve().parents[1]


def _chest(z=6, h=40, w=48) -> np.ndarray:
    hu = np.full((z, h, w), -1000.0, np.float32)
    hu[:, 4:36, 4:44] = 40.0
    hu[:, 8:32, 8:22] = -850.0
    hu[:, 8:32, 26:40] = -850.0
    return hu


def _write_volume(array, path: Path, meta: dict | None = None):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing((0.8, 0.8, 2.0))
    for k, v in (meta or {}).items():
        img.SetMetaData(k, v)
    sitk.WriteImage(img, str(path), useCompression=True)


def make_folder(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    # 2-D picture pair
    pic = np.full((48, 64), 30, np.uint8)
    pic[10:30, 10:50] = 120
    Image.fromarray(pic).save(root / "images" / "fig1.png")
    m = np.zeros((48, 64), np.uint8)
    m[12:20, 12:20] = 1
    m[22:28, 30:40] = 2
    Image.fromarray(m).save(root / "masks" / "fig1.png")
    # 3-D pair with a Slicer-style .seg.nrrd naming its segments
    hu = _chest()
    _write_volume(hu, root / "images" / "case2.nii.gz")
    lab = np.zeros(hu.shape, np.uint8)
    lab[2, 10:14, 10:14] = 5   # stored value 5 named "Ground-glass opacity"
    lab[3, 20:24, 30:34] = 7   # stored value 7 named "consolidation"
    _write_volume(lab, root / "masks" / "case2.seg.nrrd",
                  {"Segment0_Name": "Ground-glass opacity", "Segment0_LabelValue": "5", "Segment0_Layer": "0",
                   "Segment1_Name": "consolidation", "Segment1_LabelValue": "7", "Segment1_Layer": "0"})
    # 3-D pair with a binary 0/255 mask (a corrected pseudo-mask)
    _write_volume(hu, root / "images" / "case3.nrrd")
    binary = np.zeros(hu.shape, np.uint8)
    binary[1:5, 12:16, 12:16] = 255
    _write_volume(binary, root / "masks" / "case3.nii.gz")
    return root


def test_reads_pictures_volumes_and_seg_nrrd(tmp_path):
    samples = read_corrected_folder(make_folder(tmp_path / "corr"))
    by = {}
    for s in samples:
        by.setdefault(s.name.split("#")[0], []).append(s)
    assert sorted(by) == ["case2.nii.gz", "case3.nrrd", "fig1.png"]
    fig = by["fig1.png"][0]
    assert fig.hu.shape == (48, 64) and fig.target.shape == (48, 64)
    assert fig.hu[0, 0] == pytest.approx(-1350 + 30 / 255 * 1500, abs=1e-3)   # lung-window mapping
    assert np.count_nonzero(fig.target == 1) == 64 and np.count_nonzero(fig.target == 2) == 60
    # seg.nrrd: slices 2..3 (first to last labelled), cropped to the air enclosed by the body, names -> labels
    case2 = by["case2.nii.gz"]
    assert len(case2) == 2
    assert sum(np.count_nonzero(s.target == 1) for s in case2) == 16
    assert sum(np.count_nonzero(s.target == 2) for s in case2) == 16
    assert case2[0].hu.shape[0] < 40 and case2[0].hu.shape[1] < 48                # cropped
    # binary mask -> infection of unknown class, slices 1..4
    case3 = by["case3.nrrd"]
    assert len(case3) == 4
    assert all(set(np.unique(s.target)) == {0, INFECTION_UNKNOWN_CLASS} for s in case3)


def test_problems_name_the_file(tmp_path):
    root = make_folder(tmp_path / "corr")
    (root / "masks" / "fig1.png").unlink()
    with pytest.raises(InputError, match="fig1.png.*has no mask"):
        read_corrected_folder(root)

    root = make_folder(tmp_path / "corr2")
    Image.fromarray(np.full((48, 64), 7, np.uint8)).save(root / "masks" / "fig1.png")
    with pytest.raises(InputError, match="label values \\[7\\]"):
        read_corrected_folder(root)

    root = make_folder(tmp_path / "corr3")
    _write_volume(np.zeros((6, 40, 40), np.uint8), root / "masks" / "case3.nii.gz")
    with pytest.raises(InputError, match="differs from its image"):
        read_corrected_folder(root)

    with pytest.raises(InputError, match="images"):
        read_corrected_folder(tmp_path / "nothing")


def test_training_script_fine_tunes_from_a_folder(tmp_path):
    from CovidCTAnalysis.lesions.network import build_network, save_weights

    init = tmp_path / "init.pt"
    save_weights(build_network(), init)
    out = tmp_path / "tuned.pt"
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_lesions.py"), "--corrected", str(make_folder(tmp_path / "c")),
         "--init", str(init), "--iterations", "2", "--data", str(tmp_path / "no-semiseg"), "--threads", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "7 corrected slices" in run.stdout
    import torch

    before = torch.load(init, weights_only=True)
    after = torch.load(out, weights_only=True)
    assert after.keys() == before.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the weights moved
    assert out.with_suffix(".json").is_file()
