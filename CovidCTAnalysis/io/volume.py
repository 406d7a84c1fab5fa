"""The canonical CT (``CTVolume``) and the round trip between the input's own grid and the canonical grid.

Canonical grid (shared contract, common brief): direction = identity in DICOM LPS, i.e. index x runs toward the
patient's left, y toward posterior, z toward superior, as produced by ``sitk.DICOMOrient(img, "LPS")``. That filter
only permutes and flips axes, so no voxel is interpolated and the way back (``to_input_grid``) is exact.

Oblique inputs (gantry tilt, oblique reconstructions): DICOMOrient picks the closest axes and leaves a direction a few
degrees off identity. We then set the canonical direction to exactly identity (analysis code may rely on it) and keep
the true direction in ``CTVolume.oriented_direction``; outputs are mapped back index-for-index, so masks still fall on
exactly the input's voxels. The angle is stated in ``notes``. Spacing (hence volumes in ml) is unaffected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .slices import DEFAULT_SLICE_MM

IDENTITY3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
KINDS = ("nifti", "nrrd", "mha", "dicom-series", "dicom-file", "slice-2d", "slice-stack")
# Directions closer than this to identity are rounding noise (DICOM strings like 0.999999), not obliquity.
OBLIQUE_TOLERANCE = 1e-3
# Below this HU no voxel is air: a chest CT in HU always has some (outside the body, the lungs, the trachea).
AIR_HU = -500.0


@dataclass(frozen=True, eq=False)
class CTVolume:
    """One CT as the rest of the package sees it, plus what is needed to write results back onto the input.

    image: float32 SimpleITK image in HU (approximate HU when ``display_windowed``), canonical grid (see module doc).
    source: the path given to ``load_ct``. kind: one of ``KINDS``.
    display_windowed: True for PNG/JPEG sources: 8-bit display values mapped to HU through ``window``
        (width, level); such HU are approximations, and results should say so.
    is_2d: a single slice (canonical z size 1). PNG/JPEG slices, one axial DICOM file, a one-slice volume, and a
        single coronal or sagittal slice, which ``image`` holds as a picture of that plane (``picture_plane``).
        Outputs for an is_2d input may be written as .png (same width x height as the input).
    picture_plane: "coronal" or "sagittal" for a single slice of that plane: ``image`` is then the slice as one
        z slice, head at the top (rows from superior to inferior; columns: canonical x, resp. y), spacing
        (column, row, slice thickness); ``to_input_grid`` puts results back on the input's plane. None otherwise.
    input_size / input_spacing / input_origin / input_direction: the input's own grid (2 or 3 values / 4 or 9
        for the direction, as the input file stores it), input_orientation: its 3-letter DICOM code (e.g. "RAS").
    oriented_direction: direction after ``DICOMOrient(.., "LPS")``; identity except for oblique inputs.
    notes: human-readable facts about the reading (chosen series, assumed window/spacing, ignored files...).
    warnings: facts about the reading that the reader of the results must know (a DICOM series without slice
        positions stacked at its stated spacing, a NRRD/MetaImage file without a voxel spacing read as 1 mm);
        analyze copies them into the report's ``warnings``, the other commands print them on stderr.
    slice_files: for slice stacks and axial DICOM series, the file that became each canonical z slice
        (``slice_files[z]``); empty otherwise.
    input_files: for DICOM inputs, the file(s) behind the input's own third axis (``input_files[k]`` holds input
        slice k; one file for a single or multi-frame file), so DICOM outputs can reference their source images.
    modality: the DICOM modality (or None for non-DICOM inputs).
    """

    image: sitk.Image
    source: Path
    kind: str
    display_windowed: bool
    window: tuple[float, float] | None
    is_2d: bool
    input_size: tuple[int, ...]
    input_spacing: tuple[float, ...]
    input_origin: tuple[float, ...]
    input_direction: tuple[float, ...]
    input_orientation: str
    oriented_direction: tuple[float, ...] = IDENTITY3
    notes: tuple[str, ...] = ()
    slice_files: tuple[Path, ...] = ()
    modality: str | None = None
    value_range: tuple[float, float] = field(default=(math.nan, math.nan))
    picture_plane: str | None = None
    warnings: tuple[str, ...] = ()
    input_files: tuple[Path, ...] = ()

    @property
    def size(self) -> tuple[int, int, int]:
        """Canonical size (x, y, z)."""
        return tuple(self.image.GetSize())  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Canonical spacing in mm (x, y, z)."""
        return tuple(self.image.GetSpacing())  # type: ignore[return-value]

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return float(np.prod(self.spacing)) / 1000.0

    @property
    def input_dimension(self) -> int:
        return len(self.input_size)

    @property
    def hu_doubt(self) -> str | None:
        """Why the values may not be HU (no voxel is air, e.g. HU + 1024 stored without a rescale intercept), or None.

        Display-windowed slices are mapped to HU by construction and never doubted."""
        lowest = self.value_range[0]
        if self.display_windowed or not lowest > AIR_HU:  # NaN (unknown range) is not doubted either
            return None
        return (f"no voxel is below {AIR_HU:g} (lowest {lowest:g}), so the values may not be HU (stored without a "
                "rescale intercept?)")

    def with_hu_doubt(self, problem: str) -> str:
        """``problem`` (e.g. the lung finder's "no lungs found in the image (...)") followed by ``hu_doubt`` when the
        values may not be HU, so a one-line refusal names the likely cause."""
        doubt = self.hu_doubt
        return problem if doubt is None or doubt in problem else f"{problem}; {doubt}"

    def summary(self) -> dict:
        """The CONTRACTS report.json "input" block (path, size, spacing_mm, display_windowed) plus kind and notes."""
        return {"path": str(self.source), "size": list(self.size), "spacing_mm": [float(s) for s in self.spacing],
                "display_windowed": self.display_windowed, "kind": self.kind, "notes": list(self.notes)}


def strip_metadata(image: sitk.Image) -> sitk.Image:
    """Drop every metadata key (DICOM tags may hold patient data and must never reach an output file).

    SimpleITK copies share their metadata until made unique (EraseMetaData on ``sitk.Image(x)`` also empties ``x``),
    so the image is made unique first: callers' images are never modified.
    """
    if image.GetMetaDataKeys():
        image.MakeUnique()
    for key in image.GetMetaDataKeys():
        image.EraseMetaData(key)
    return image


def as_3d(image: sitk.Image, thickness: float | None = None) -> sitk.Image:
    """A 2-D image as a one-slice 3-D image (JoinSeries extends the direction with +z).

    A 2-D image states no slice thickness: the slice is ``thickness`` mm thick, by default ``DEFAULT_SLICE_MM`` as
    for PNG/JPEG slices (JoinSeries alone would say 1 mm), so volumes in mL agree across the 2-D containers. Callers
    that report volumes must say the thickness was assumed.
    """
    if image.GetDimension() == 3:
        return image
    if image.GetDimension() == 2:
        return sitk.JoinSeries([image], 0.0, float(DEFAULT_SLICE_MM if thickness is None else thickness))
    raise ValueError(f"expected a 2-D or 3-D image, got {image.GetDimension()}-D")


def orientation_code(direction: tuple[float, ...]) -> str:
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(tuple(float(d) for d in direction))


@dataclass(frozen=True)
class AxisMap:
    """How DICOMOrient(.., "LPS") rearranges the axes of an image with a given direction.

    source[j]: the input axis that becomes canonical axis j; flip[j]: whether it is reversed;
    oriented_direction: the direction DICOMOrient produces (input direction with permuted, negated columns).
    """

    source: tuple[int, int, int]
    flip: tuple[bool, bool, bool]
    oriented_direction: tuple[float, ...]


def axis_map(direction3: tuple[float, ...]) -> AxisMap:
    """Ask ``sitk.DICOMOrient`` itself (on a 1-voxel proxy with the same direction) which permutation/flips it uses.

    DICOMOrient only permutes and flips, so its output direction is ``D @ P`` for a signed permutation ``P``; we read
    ``P`` off the proxy and apply it with numpy views (one pass) instead of running the ITK filter on the whole CT,
    which takes >1 s for 512 x 512 x 300. Testing/test_io_volume.py checks the result against DICOMOrient voxel for
    voxel.
    """
    proxy = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    proxy.SetDirection(tuple(float(d) for d in direction3))
    oriented = tuple(sitk.DICOMOrient(proxy, "LPS").GetDirection())
    perm = np.rint(np.asarray(direction3).reshape(3, 3).T @ np.asarray(oriented).reshape(3, 3))
    source = tuple(int(np.argmax(np.abs(perm[:, j]))) for j in range(3))
    flip = tuple(bool(perm[source[j], j] < 0) for j in range(3))
    if sorted(source) != [0, 1, 2]:
        raise RuntimeError(f"DICOMOrient gave no axis permutation for direction {direction3}")
    return AxisMap(source, flip, oriented)  # type: ignore[arg-type]


def _to_canonical_array(arr: np.ndarray, amap: AxisMap) -> np.ndarray:
    """Array (z, y, x) on the input grid -> view on the canonical grid (numpy axis a = image axis 2 - a)."""
    view = np.transpose(arr, [2 - amap.source[2 - b] for b in range(3)])
    index = tuple(slice(None, None, -1) if amap.flip[2 - b] else slice(None) for b in range(3))
    return view[index]


def _from_canonical_array(arr: np.ndarray, amap: AxisMap) -> np.ndarray:
    """Inverse of ``_to_canonical_array``."""
    index = tuple(slice(None, None, -1) if amap.flip[2 - b] else slice(None) for b in range(3))
    unflipped = arr[index]
    canonical_axis_of = {amap.source[j]: j for j in range(3)}
    return np.transpose(unflipped, [2 - canonical_axis_of[2 - a] for a in range(3)])


def canonicalize(image3d: sitk.Image, dtype=np.float32) -> tuple[sitk.Image, tuple[float, ...], float]:
    """Reorient a 3-D scalar image to the canonical grid, as ``sitk.DICOMOrient(img, "LPS")`` does.

    Returns (canonical image of ``dtype`` (None: keep the pixel type) with direction exactly identity, the
    direction DICOMOrient gives, obliquity in degrees). No metadata is carried over.
    """
    amap = axis_map(image3d.GetDirection())
    arr = sitk.GetArrayViewFromImage(image3d)
    canonical_arr = _to_canonical_array(arr, amap)
    out_dtype = arr.dtype if dtype is None else dtype
    canonical = sitk.GetImageFromArray(np.asarray(canonical_arr, dtype=out_dtype, order="C")
                                       if canonical_arr.dtype != out_dtype or not canonical_arr.flags.c_contiguous
                                       else canonical_arr)
    size = image3d.GetSize()
    corner = [0, 0, 0]
    for j in range(3):
        if amap.flip[j]:
            corner[amap.source[j]] = size[amap.source[j]] - 1
    spacing = image3d.GetSpacing()
    canonical.SetOrigin(image3d.TransformIndexToPhysicalPoint(corner))
    canonical.SetSpacing([spacing[amap.source[j]] for j in range(3)])
    d = np.asarray(amap.oriented_direction).reshape(3, 3)
    oriented_direction = amap.oriented_direction
    obliquity = float(np.degrees(np.arccos(np.clip(np.min(np.diag(d)), -1.0, 1.0))))
    if np.max(np.abs(d - np.eye(3))) <= OBLIQUE_TOLERANCE:
        oriented_direction, obliquity = IDENTITY3, 0.0
    return canonical, oriented_direction, obliquity


def slice_order(input_direction3: tuple[float, ...], oriented_direction: tuple[float, ...], n: int) -> list[int] | None:
    """For an input whose third axis becomes the canonical z axis: input slice index of each canonical slice.

    None when the input's slices are not axial (its third axis maps to canonical x or y).
    """
    a = np.asarray(input_direction3).reshape(3, 3)
    b = np.asarray(oriented_direction).reshape(3, 3)
    perm = np.rint(a.T @ b)  # signed permutation: input axis i -> canonical axis j
    if abs(perm[2, 2]) != 1:
        return None
    return list(range(n)) if perm[2, 2] > 0 else list(range(n - 1, -1, -1))


def picture_plane(size: tuple[int, int, int]) -> str | None:
    """"coronal" or "sagittal" for a canonical size (x, y, z) that is one coronal / sagittal slice, else None."""
    x, y, z = size
    if z > 1 and y == 1 and x > 1:
        return "coronal"
    if z > 1 and x == 1 and y > 1:
        return "sagittal"
    return None


def canonical_to_picture(canonical: sitk.Image, plane: str) -> sitk.Image:
    """One coronal or sagittal canonical slice as a one-slice image of that plane, head at the top."""
    arr = sitk.GetArrayViewFromImage(canonical)  # (z, y, x)
    sx, sy, sz = canonical.GetSpacing()
    rows = arr[::-1, 0, :] if plane == "coronal" else arr[::-1, :, 0]
    picture = sitk.GetImageFromArray(np.ascontiguousarray(rows)[None])
    picture.SetSpacing((sx, sz, sy) if plane == "coronal" else (sy, sz, sx))
    picture.SetOrigin(canonical.GetOrigin())
    return picture


def picture_to_canonical(arr: np.ndarray, plane: str) -> np.ndarray:
    """Inverse of ``canonical_to_picture`` on arrays: (1, rows, columns) -> the canonical (z, y, x) slice."""
    rows = arr[0][::-1]
    return rows[:, None, :] if plane == "coronal" else rows[:, :, None]


def _blank_2d(direction: tuple[float, ...]) -> sitk.Image:
    img = sitk.Image(1, 1, sitk.sitkUInt8)
    img.SetDirection(direction)
    return img


def _already_on_input_grid(image: sitk.Image, ct: CTVolume, amap: AxisMap) -> bool:
    """Whether ``image`` (canonical grid) is exactly on the input's grid: a 3-D input whose axes need no permutation
    or flip and whose origin, spacing and direction are the canonical ones."""
    if ct.picture_plane is not None or ct.input_dimension != 3 or amap.source != (0, 1, 2) or any(amap.flip):
        return False
    return (tuple(image.GetOrigin()) == tuple(ct.input_origin) and tuple(image.GetSpacing()) == tuple(ct.input_spacing)
            and tuple(image.GetDirection()) == tuple(ct.input_direction))


def to_input_grid(image: sitk.Image, ct: CTVolume) -> sitk.Image:
    """Put a canonical-grid image (uint8 label map or float heatmap) back on the input's own grid, exactly.

    Same size, spacing, origin and direction as the input (2-D if the input file was 2-D); pixel values are only
    permuted/flipped (the inverse of the load-time DICOMOrient), never interpolated; the pixel type is kept.
    ``image`` must have the canonical size of ``ct``. When the input already lies on the canonical grid, ``image``
    itself is returned (callers write it, never modify it).
    """
    if tuple(image.GetSize()) != ct.size:
        raise ValueError(f"image size {image.GetSize()} is not the canonical size {ct.size} of {ct.source}")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("to_input_grid expects a scalar image")
    direction3 = ct.input_direction if ct.input_dimension == 3 else as_3d(_blank_2d(ct.input_direction)).GetDirection()
    amap = axis_map(direction3)
    if _already_on_input_grid(image, ct, amap):
        return image  # an input stored in the canonical order: nothing to permute, no 300 MB copy of a heatmap
    arr = sitk.GetArrayViewFromImage(image)
    if ct.picture_plane is not None:
        arr = picture_to_canonical(arr, ct.picture_plane)
    arr = _from_canonical_array(arr, amap)
    size3 = tuple(ct.input_size) + (1,) * (3 - ct.input_dimension)
    if arr.shape[::-1] != size3:
        raise RuntimeError(f"reorientation gave shape {arr.shape[::-1]}, expected the input size {size3}")
    if ct.input_dimension == 2:
        arr = arr[0]
    back = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    back.SetOrigin(ct.input_origin)
    back.SetSpacing(ct.input_spacing)
    back.SetDirection(ct.input_direction)
    return back
