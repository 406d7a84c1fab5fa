"""Reading segments back onto the CT grid releases what it allocates: no copy of the CT leaks per call.

``segment_mask`` (behind ``label_array`` and ``segment_voxel_counts``, called for every segment of every analysis)
asks slicer-core for an oriented image of the reference volume; that factory hands its caller ownership of a deep
copy of the voxels. Two measures on a real slicer-core scene: the reference count of that image once the call is
over, and the process's resident memory over repeated calls on a CT large enough for a leak to show.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("slicer")

import slicer  # noqa: E402
import vtk  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from CovidCTAnalysis.mrml import segmentations  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402

pytestmark = pytest.mark.mrml

SIZE = (256, 256, 128)  # int16: 16 MiB per copy of the CT


@pytest.fixture
def ct_and_segments():
    with new_scene() as headless:
        scene = headless.scene
        ct = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
        image = vtk.vtkImageData()
        image.SetDimensions(*SIZE)
        voxels = np.full(SIZE[::-1], -800, dtype=np.int16)
        image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(voxels.ravel(), deep=True,
                                                                   array_type=vtk.VTK_SHORT))
        ct.SetAndObserveImageData(image)
        ct.SetSpacing(1.0, 1.0, 2.0)
        labels = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")
        label_voxels = np.zeros(SIZE[::-1], dtype=np.uint8)
        label_voxels[40:80, 60:120, 60:120] = 1
        label_image = vtk.vtkImageData()
        label_image.SetDimensions(*SIZE)
        label_image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(label_voxels.ravel(), deep=True,
                                                                         array_type=vtk.VTK_UNSIGNED_CHAR))
        labels.SetAndObserveImageData(label_image)
        labels.SetSpacing(1.0, 1.0, 2.0)
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "segments")
        assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labels, node)
        yield ct, node


def _resident_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Recording:
    """Stands in for slicer-core's segmentations logic class and keeps the images its factory hands out."""

    def __init__(self, real):
        self.real, self.images = real, []

    def CreateOrientedImageDataFromVolumeNode(self, volume):  # noqa: N802 - VTK's name
        image = self.real.CreateOrientedImageDataFromVolumeNode(volume)
        self.images.append(image)
        return image

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_the_reference_image_is_released_after_each_call(ct_and_segments, monkeypatch):
    ct, node = ct_and_segments
    recording = _Recording(slicer.vtkSlicerSegmentationsModuleLogic)
    fake_slicer = type("FakeSlicer", (), {"__getattr__": lambda self, name: getattr(slicer, name)})()
    fake_slicer.vtkSlicerSegmentationsModuleLogic = recording
    monkeypatch.setattr(segmentations, "slicer", fake_slicer)
    segment_id = node.GetSegmentation().GetNthSegmentID(0)
    mask = segmentations.segment_mask(node, segment_id, ct)
    assert mask.sum() == 40 * 60 * 60
    assert [image.GetReferenceCount() for image in recording.images] == [1]  # only the test's own reference


def test_repeated_reads_do_not_grow_memory(ct_and_segments):
    ct, node = ct_and_segments
    segment_id = node.GetSegmentation().GetNthSegmentID(0)
    segmentations.segment_mask(node, segment_id, ct)  # first call: caches, imports, allocator warm-up
    before = _resident_mib()
    runs = 12
    for _ in range(runs):
        segmentations.segment_mask(node, segment_id, ct)
    grown = _resident_mib() - before
    copy_mib = np.prod(SIZE) * 2 / 2**20
    assert grown < 2 * copy_mib, f"resident memory grew {grown:.0f} MiB over {runs} calls ({copy_mib:.0f} MiB per CT)"
