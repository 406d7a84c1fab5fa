"""Volume nodes: reading files into the scene, copying a node to a file, voxel arrays and grid geometry.

MRML works in RAS (x grows toward the patient's right, y anterior, z superior) while our files and SimpleITK images
are LPS (x grows toward the patient's left, y posterior): RAS = (-x, -y, z) of LPS. The storage nodes convert on read
and write, so every function here speaks RAS and the files stay LPS. Nothing in this module modifies a node it is given, except the node it creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from ..errors import InputError


@dataclass(frozen=True)
class Geometry:
    """A volume's voxel grid in RAS: dimensions (i, j, k), spacing (mm) and the 4x4 IJK-to-RAS matrix."""

    dimensions: tuple[int, int, int]
    spacing: tuple[float, float, float]
    ijk_to_ras: np.ndarray

    def matches(self, other: Geometry, tolerance_mm: float = 1e-3) -> bool:
        """Same dimensions and the same voxel positions (matrices equal within ``tolerance_mm``)."""
        return self.dimensions == other.dimensions and bool(
            np.allclose(self.ijk_to_ras, other.ijk_to_ras, atol=tolerance_mm)
        )


def ijk_to_ras(node) -> np.ndarray:
    """The node's IJK-to-RAS matrix as a 4x4 numpy array (parent transforms are not applied)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def geometry(node) -> Geometry:
    """Grid of a scalar/labelmap volume node or of a vtkOrientedImageData."""
    image = node.GetImageData() if hasattr(node, "GetImageData") and node.GetImageData() is not None else node
    dims = tuple(int(d) for d in image.GetDimensions())
    return Geometry(dims, tuple(float(s) for s in node.GetSpacing()), ijk_to_ras(node))


def array_from_image(image) -> np.ndarray:
    """A copy of a single-component vtkImageData's voxels as a numpy array indexed [k, j, i]."""
    scalars = image.GetPointData().GetScalars()
    if scalars is None:
        raise ValueError("image has no voxel data")
    nx, ny, nz = image.GetDimensions()
    return numpy_support.vtk_to_numpy(scalars).reshape(nz, ny, nx).copy()


def array_from_volume(node) -> np.ndarray:
    """A copy of a volume node's voxels as a numpy array indexed [k, j, i] (the same order as SimpleITK)."""
    return array_from_image(node.GetImageData())


def _new_volume(scene, class_name: str, name: str):
    node = scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(name))
    return node


def load_volume(scene, path: str | Path, name: str | None = None, labelmap: bool = False):
    """Read a volume file (NRRD, NIfTI, MHA...) into a new scalar (or labelmap) volume node with a display node.

    Raises InputError naming the file when it is missing or unreadable; the scene is left unchanged then.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "volume file not found")
    class_name = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = _new_volume(scene, class_name, name or _stem(path))
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    storage.SetSingleFile(True)
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node) or node.GetImageData() is None:
        remove_with_helpers(scene, node)
        raise InputError(path, "could not be read as a volume")
    node.CreateDefaultDisplayNodes()
    return node


def write_volume_copy(node, path: str | Path) -> Path:
    """Write the node's voxels and geometry to ``path`` (format from the extension) without touching the node.

    A private storage node, never added to the scene, does the writing: the node keeps its own storage node, file
    name, modified state and display, which is what "the input volume is never modified" requires.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    storage.SetUseCompression(True)
    if not storage.WriteData(node):
        raise InputError(path, f"could not write a copy of volume {node.GetName()!r}")
    return path


def remove_with_helpers(scene, node) -> None:
    """Remove a node with its display and storage nodes."""
    if node is None or node.GetScene() is None:
        return
    helpers = []
    for getter, count in (("GetNthDisplayNode", "GetNumberOfDisplayNodes"),
                          ("GetNthStorageNode", "GetNumberOfStorageNodes")):
        if hasattr(node, count):
            helpers += [getattr(node, getter)(i) for i in range(getattr(node, count)())]
    scene.RemoveNode(node)
    for helper in helpers:
        if helper is not None and helper.GetScene() is not None:
            scene.RemoveNode(helper)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".seg.nrrd", ".nii.gz", ".nrrd", ".nii", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
