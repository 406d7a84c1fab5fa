"""Volume nodes: reading files into the scene, copying a node to a file, voxel arrays and grid geometry.

MRML works in RAS (x grows toward the patient's right, y anterior, z superior) while our files and SimpleITK images
are LPS (x grows toward the patient's left, y posterior): RAS = (-x, -y, z) of LPS. The storage nodes convert on read
and write, so every function here speaks RAS and the files stay LPS. Nothing in this module modifies a node it is
given, except the node it creates and the node ``move_onto_grid`` is asked to move (a heatmap just loaded).

Two guards sit between a file and MRML's storage nodes. A damaged file is refused before a storage node reads it
(``check_image_file``): the segmentation storage node aborts the whole process on an ITK read error, and NIfTI
readers silently return a cut-off file's first voxels. And a grid is compared with the CT's by its voxel centres
(``Geometry.reversed_axes``): Slicer's volume reader reverses the slice axis of a left-handed grid (so its
IJK-to-RAS is right-handed) while the segmentation reader keeps the file's grid, so the same voxels may come with an
axis in the opposite order; such data is flipped onto the CT's grid instead of being refused.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
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

    def reversed_axes(self, other: Geometry, tolerance_mm: float = 1e-3) -> tuple[int, ...] | None:
        """The voxel axes (0 i, 1 j, 2 k) that run in the opposite order in ``other`` when both grids have the same
        voxel centres; () when they match; None when they are different grids.

        The same voxel centres: the same dimensions, and each IJK-to-RAS column equal to ``other``'s or to its
        negative, the origin then being ``other``'s last voxel along each negated axis. Slicer's volume reader and
        its segmentation reader give a left-handed file's grid this way with the slice axis reversed in one only.
        """
        if self.dimensions != other.dimensions:
            return None
        signs = axis_signs(self.ijk_to_ras, other.ijk_to_ras, tolerance_mm)
        if signs is None:
            return None
        first_voxel = np.where(signs < 0, np.array(self.dimensions) - 1, 0)
        origin = other.ijk_to_ras[:3, 3] + other.ijk_to_ras[:3, :3] @ first_voxel
        if not np.allclose(self.ijk_to_ras[:3, 3], origin, atol=tolerance_mm):
            return None
        return tuple(int(axis) for axis in np.flatnonzero(signs < 0))


def axis_signs(matrix: np.ndarray, reference: np.ndarray, tolerance_mm: float = 1e-3) -> np.ndarray | None:
    """Per voxel axis of the IJK-to-RAS ``matrix``: +1 where it steps like ``reference``'s, -1 where it steps the
    opposite way (the axis order reversed); None when an axis direction or a spacing differs (within
    ``tolerance_mm``)."""
    signs = []
    for axis in range(3):
        own, ref = matrix[:3, axis], reference[:3, axis]
        if np.allclose(own, ref, atol=tolerance_mm):
            signs.append(1)
        elif np.allclose(own, -ref, atol=tolerance_mm):
            signs.append(-1)
        else:
            return None
    return np.array(signs)


def flip_image_axes(image, axes) -> None:
    """Reverse the voxel order of a vtkImageData (or vtkOrientedImageData) along ``axes`` (0 i, 1 j, 2 k), in place;
    its extent and geometry are left for the caller to set."""
    axes = tuple(axes)
    scalars = image.GetPointData().GetScalars() if axes else None
    if scalars is None:
        return
    nx, ny, nz = image.GetDimensions()
    voxels = numpy_support.vtk_to_numpy(scalars).reshape(nz, ny, nx, -1)  # a view of the image's own memory
    voxels[...] = np.flip(voxels, axis=tuple(2 - axis for axis in axes)).copy()
    scalars.Modified()
    image.Modified()


def vtk_matrix(matrix: np.ndarray) -> vtk.vtkMatrix4x4:
    result = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            result.SetElement(row, column, float(matrix[row, column]))
    return result


def move_onto_grid(node, reference_volume, tolerance_mm: float = 1e-3) -> bool:
    """Put a volume node that has the reference volume's voxel centres exactly on its grid: voxels flipped along
    each axis that runs the other way, IJK-to-RAS then the reference's. False (node unchanged) when the grids differ.

    Only ``node`` is changed; the reference volume (the user's CT) never is.
    """
    own, target = geometry(node), geometry(reference_volume)
    axes = own.reversed_axes(target, tolerance_mm)
    if axes is None:
        return False
    if axes:
        flip_image_axes(node.GetImageData(), axes)
        node.SetIJKToRASMatrix(vtk_matrix(target.ijk_to_ras))
    return True


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
    # header and payload length only: the storage node itself fails cleanly on other damage, and a CT or a heatmap
    # on its grid is too large to read twice
    check_image_file(path, "volume file", read_voxels=False)
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


#: model (surface) formats the segmentation storage node reads besides label images; SimpleITK cannot check them
SURFACE_SUFFIXES = (".vtm", ".vtp", ".vtk", ".stl", ".obj", ".ply")
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def check_image_file(path: str | Path, what: str, *, read_voxels: bool = True) -> None:
    """Refuse a damaged or unreadable image file before an MRML storage node reads it: InputError (one line naming
    the file) instead of a process abort or a silently cut-off image.

    SimpleITK reads the header (and, with ``read_voxels``, the voxels: an ITK read error is exactly what aborts the
    segmentation storage node); then the voxel data's length is checked against the header (NIfTI readers accept a
    cut-off file): gzip-compressed data must decompress to its end-of-stream marker and to the announced size, raw
    data must be all there. That check streams through the file without holding it, so it stays cheap for a CT.
    Surface files (``SURFACE_SUFFIXES``) are left to the storage node.
    """
    path = Path(path)
    if path.name.lower().endswith(SURFACE_SUFFIXES):
        return
    try:
        if read_voxels:
            sitk.ReadImage(str(path))
        else:
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
        problem = _payload_problem(path)
    except RuntimeError as exc:  # SimpleITK's read errors
        problem = _first_reason(str(exc))
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
    if problem:
        raise InputError(path, f"damaged or unreadable {what} ({problem})")


def _first_reason(message: str) -> str:
    """What went wrong, in a few words, from a SimpleITK error message (its last line names the cause)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reason = lines[-1] if lines else ""
    if "Unable to determine ImageIO reader" in reason:
        return "no image reader recognises it"
    for prefix in ("sitk::ERROR: ", "[nrrd] ", "Reason: "):
        if reason.startswith(prefix):
            reason = reason[len(prefix):]
    return reason[:160] or "the image reader failed"


def _payload_problem(path: Path) -> str:
    """Why the file's (decompressed) voxel data is shorter than its header says, or "" when it is complete (or when
    the format is not one checked here: NIfTI, .nii.gz and NRRD with attached raw or gzip data are)."""
    with open(path, "rb") as stream:
        start = stream.read(544)
    if start[:2] == _GZIP_MAGIC:  # the whole file compressed (.nii.gz)
        try:
            with gzip.open(path, "rb") as stream:
                expected = _nifti_end(stream.read(544))
        except EOFError:
            return "the compressed data ends early"
        except (OSError, zlib.error) as exc:
            return f"corrupt compressed data: {exc}"
        return _gzip_problem(path, 0, expected)
    if start.startswith(b"NRRD"):
        layout = _nrrd_payload(path)
        if layout is None:
            return ""
        offset, expected, compressed = layout
        if compressed:
            return _gzip_problem(path, offset, expected)
        end = offset + expected
    else:
        end = _nifti_end(start)
    size = path.stat().st_size
    if end is not None and size < end:
        return f"the file ends early: {size} of {end} bytes"
    return ""


def _gzip_problem(path: Path, offset: int, expected: int | None) -> str:
    """Check the gzip stream that starts at ``offset`` and runs to the end of the file: it must decompress to its
    end-of-stream marker and to at least ``expected`` bytes. The trailer's size field is read first: when it states
    the expected size the stream is complete (a cut-off file ends in compressed data, not in that trailer)."""
    if expected is not None and path.stat().st_size - offset >= 18:
        with open(path, "rb") as stream:
            stream.seek(-4, 2)
            if int.from_bytes(stream.read(4), "little") == expected % (1 << 32):
                return ""
    size = 0
    try:
        with open(path, "rb") as raw:
            raw.seek(offset)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                chunk = stream.read(_CHUNK)
                while chunk:
                    size += len(chunk)
                    chunk = stream.read(_CHUNK)
    except EOFError:
        return "the compressed data ends early"
    except (OSError, zlib.error) as exc:
        return f"corrupt compressed data: {exc}"
    if expected is not None and size < expected:
        return f"the data ends early: {size} of {expected} bytes"
    return ""


#: bytes per value of the NRRD type names (the teem spellings)
_NRRD_TYPE_BYTES = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
                     "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
                    4),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64",
                     "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t",
                     "double"), 8),
}


def _nrrd_payload(path: Path) -> tuple[int, int, bool] | None:
    """(where the data starts, its size in bytes once decompressed, gzip-compressed) of a NRRD file whose raw or
    gzip data follows its header; None for detached data, other encodings or a header this check does not follow."""
    fields = {}
    with open(path, "rb") as stream:
        for _ in range(100000):
            line = stream.readline()
            if not line or not line.strip():
                break
            text = line.decode("latin-1").strip()
            if text.startswith("#") or ":=" in text or ": " not in text:
                continue
            key, value = text.split(": ", 1)
            fields[key.strip().lower()] = value.strip()
        else:
            return None
        if not line:  # no blank line: the header itself is cut off (SimpleITK reports that)
            return None
        offset = stream.tell()
    encoding = fields.get("encoding", "").lower()
    if "data file" in fields or "datafile" in fields or fields.get("line skip", "0") != "0" \
            or fields.get("byte skip", "0") != "0" or encoding not in ("raw", "gzip", "gz"):
        return None
    size = _NRRD_TYPE_BYTES.get(" ".join(fields.get("type", "").lower().split()))
    try:
        sizes = [int(v) for v in fields.get("sizes", "").split()]
    except ValueError:
        return None
    if size is None or not sizes or min(sizes) < 1:
        return None
    return offset, int(np.prod(sizes, dtype=np.int64)) * size, encoding != "raw"


def _nifti_end(header: bytes) -> int | None:
    """Where the voxels of a single-file NIfTI-1/-2 image end (bytes), from its header; None for other files."""
    for order in "<>":
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348 and header[344:347] == b"n+1":
            dims = struct.unpack(order + "8h", header[40:56])
            bitpix = struct.unpack(order + "h", header[72:74])[0]
            offset = struct.unpack(order + "f", header[108:112])[0]
            break
        if len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540 and header[4:7] == b"n+2":
            bitpix = struct.unpack(order + "h", header[14:16])[0]
            dims = struct.unpack(order + "8q", header[16:80])
            offset = struct.unpack(order + "q", header[168:176])[0]
            break
    else:
        return None
    rank = dims[0]
    if not 1 <= rank <= 7 or any(d < 1 for d in dims[1:rank + 1]) or bitpix < 1 or not 0 <= offset < 1e12:
        return None  # not a header this check understands (NaN offsets included): the reader judges the file
    return int(offset) + int(np.prod(dims[1:rank + 1], dtype=np.int64)) * bitpix // 8


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
