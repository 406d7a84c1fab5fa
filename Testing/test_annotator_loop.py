"""The annotator's loop end to end on a real slicer-core scene, as the Lesion Segmentation module drives it:

pseudo-mask (the real `covidct segment-lesions` in the background) -> the annotator's correction, written into the
segments the way Segment Editor's effects write them -> "Save correction" into the images/ + masks/ dataset ->
fine-tuning with scripts/train_lesions.py --corrected -> the fine-tuned model's mask, loaded back onto the CT.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("slicer")
pytest.importorskip("torch")

import SimpleITK as sitk  # noqa: E402
import slicer  # noqa: E402
import vtk  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case  # noqa: E402
from CovidCTAnalysis.io import write_label_map  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS  # noqa: E402
from CovidCTAnalysis.mrml.process import ProcessState  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import label_array, load_segmentation, segment_ids_by_name  # noqa: E402
from CovidCTAnalysis.mrml.volumes import ijk_to_ras, load_volume  # noqa: E402

pytestmark = pytest.mark.mrml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "CovidCTAnalysis" / "SlicerModules" / "CovidCTLesionSegmentation"))
from CovidCTLesionSegmentationLib.LesionSegmentationLogic import LesionSegmentationLogic  # noqa: E402
from CovidCTLesionSegmentationLib.Parameters import LesionSegmentationParameters  # noqa: E402


def _paint(segmentation_node, name: str, mask: np.ndarray, volume_node) -> None:
    """Replace a segment's voxels with ``mask`` [k, j, i] on the volume's grid, as Segment Editor's effects do."""
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(*mask.shape[::-1])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(mask.astype(np.uint8).ravel(), deep=True,
                                                               array_type=vtk.VTK_UNSIGNED_CHAR))
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    image.SetImageToWorldMatrix(matrix)
    ids = segment_ids_by_name(segmentation_node)
    segment_id = ids.get(name) or segmentation_node.GetSegmentation().AddEmptySegment("", name)
    assert slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        image, segmentation_node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def test_pseudo_mask_correction_dataset_finetune_and_new_mask(tmp_path):
    case = make_demo_ct(size=(96, 96, 48), seed=4)
    ct_path = write_demo_case(case, tmp_path / "ct")
    truth = sitk.GetArrayFromImage(case.lesions)
    dataset, weights = tmp_path / "dataset", tmp_path / "my-lesions-unet.pt"
    with new_scene() as headless:
        scene = headless.scene
        parameters = LesionSegmentationParameters.of(scene)
        parameters.inputVolume = ct = load_volume(scene, ct_path, "demo CT")
        logic = LesionSegmentationLogic(scene, python=sys.executable)

        # 1. the pseudo-mask, from the real background process
        logic.start_pseudo_mask(parameters)
        deadline = time.monotonic() + 600
        while logic.running and time.monotonic() < deadline:
            logic.poll()
            time.sleep(0.05)
        logic.poll()
        assert logic.state is ProcessState.SUCCEEDED, logic.error_message
        pseudo = label_array(parameters.segmentation, ct, LESION_SEGMENTS)
        assert pseudo.any()

        # 2. the correction: every lesion segment becomes the truth
        for segment in LESION_SEGMENTS[:2]:
            _paint(parameters.segmentation, segment.name, truth == segment.label, ct)
        np.testing.assert_array_equal(label_array(parameters.segmentation, ct, LESION_SEGMENTS), truth)

        # 3. "Save correction"
        parameters.datasetFolder, parameters.caseId = str(dataset), "demo4"
        image_path, mask_path = logic.save_correction(parameters)
        assert (image_path.parent.name, mask_path.parent.name) == ("images", "masks")
        np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(mask_path))), truth)

        # 4. fine-tuning on the dataset (a few iterations: the loop, not the science; no other data mixed in)
        done = subprocess.run([sys.executable, str(REPO / "scripts" / "train_lesions.py"), "--corrected", str(dataset),
                               "--data", str(tmp_path / "no-semiseg"), "--iterations", "3", "--threads", "1",
                               "--out", str(weights)], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        registered = (REPO / "Resources" / "Models" / "lesions-unet" / "lesions-unet.pt").read_bytes()
        assert weights.is_file() and weights.read_bytes() != registered

        # 5. the fine-tuned model's mask, on the CT in the scene
        from CovidCTAnalysis.io import load_ct, to_input_grid
        from CovidCTAnalysis.lesions import segment_lesions
        from CovidCTAnalysis.lesions.network import load_network
        from CovidCTAnalysis.lungs.select import segment_lungs_and_pleura

        loaded = load_ct(ct_path)
        lungs, pleural = segment_lungs_and_pleura(loaded.image)
        labels = segment_lesions(loaded.image, lungs, net=load_network("cpu", weights=weights), pleural=pleural)
        new_file = write_label_map(to_input_grid(labels, loaded), tmp_path / "new-lesions.seg.nrrd", LESION_SEGMENTS)
        node = load_segmentation(scene, new_file, LESION_SEGMENTS, name="fine-tuned lesions", reference_volume=ct)
        new = label_array(node, ct, LESION_SEGMENTS)
        assert set(segment_ids_by_name(node)) <= {s.name for s in LESION_SEGMENTS} and new.any()
        # three small steps on the truth of this very CT do not make the model worse on it
        assert _dice(new > 0, truth > 0) >= _dice(pseudo > 0, truth > 0) - 0.05
