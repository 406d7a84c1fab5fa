"""Key images for report.html: lung-window slices with lung contours and lesion fills, as base64 PNG.

Axial images are shown in radiological convention (patient right on the image's left, anterior up), coronal images
with superior up; pixels are resampled to square millimetres so anatomy keeps its proportions.

Slices are named so that a reader finds them in their own viewer (``SliceNames``): an axial slice by z, its position
along the patient's feet-to-head axis in mm (patient coordinates, larger z = nearer the head, as DICOM's Image
Position (Patient) and every viewer give it), plus for a DICOM series its instance number and file, and for a
NIfTI/NRRD/MHA file stored in another order its own 0-based voxel index. report.json keeps the canonical 0-based
index, counted from the feet (0 = lowest slice), with each index's z, DICOM instance and file beside it
(``SliceNames.position``); without the CT's geometry the reports count from the feet too, from 1.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image
from skimage.segmentation import find_boundaries

from ..labels import LESION_SEGMENTS, LUNG_SEGMENTS

LUNG_WINDOW = (1500.0, -600.0)  # width, level (HU)
LESION_OPACITY = 0.45
HEATMAP_THRESHOLD = 0.2  # heatmap values below are not drawn (the Slicer overlay starts at 0.5: mrml/heatmaps.py)
FROM_THE_FEET = "counted from the feet, 1 = lowest slice"
FROM_THE_FRONT = "counted from the front, 1 = most anterior slice"
VOLUME_FILES = ("nifti", "nrrd", "mha")  # inputs whose own voxel index is worth naming


class SliceNames:
    """How report.html and report.pdf name a slice of the canonical grid (module doc).

    ``image``: the canonical CT; ``ct``: its ``CTVolume`` (the input's geometry and files), without which slices are
    counted from the feet, from 1. File names shown for DICOM slices have the patient's name, ID and birth date (from
    the file's own header) replaced by "[removed]" unless ``keep_identifiers``.
    """

    def __init__(self, image: sitk.Image, ct=None, keep_identifiers: bool = False):
        self.image = image
        self.ct = ct
        self.keep_identifiers = keep_identifiers
        self.size = tuple(int(s) for s in image.GetSize())  # x, y, z
        self.spacing = tuple(float(s) for s in image.GetSpacing())
        self._headers: dict[Path, tuple[int | None, float | None, str]] = {}
        # positions in mm are the patient's only where the input states them (not for 8-bit pictures) and where the
        # canonical grid is the CT's own (not a single coronal/sagittal slice held as a picture)
        self.located = (ct is not None and not ct.display_windowed and ct.picture_plane is None
                        and tuple(ct.image.GetSize()) == self.size)

    # ---------------------------------------------------------------------------------------------- positions

    def position_mm(self, axis: int, index: int) -> float | None:
        """Patient coordinate (LPS, mm) along canonical ``axis`` (0 x, 1 y, 2 z) of the slice ``index`` on that
        axis, at the slice's centre (an oblique input's slices are not level); None without the input's geometry."""
        if not self.located:
            return None
        ijk = [(n - 1) / 2.0 for n in self.size]
        ijk[axis] = float(index)
        direction = np.asarray(self.ct.oriented_direction, dtype=float).reshape(3, 3)
        point = np.asarray(self.image.GetOrigin(), dtype=float) + direction @ (np.asarray(ijk) * self.spacing)
        return float(point[axis])

    def z_mm(self, z: int) -> float | None:
        """z (mm, patient coordinates) of canonical axial slice ``z``: the DICOM file's Image Position (Patient)
        where the slice is one DICOM file that states it, else from the canonical grid; None without geometry."""
        if not self.located:
            return None
        header = self._header(self._dicom_file(z))
        if header is not None and header[1] is not None:
            return header[1]
        return self.position_mm(2, z)

    def _mm(self, value: float) -> str:
        digits = 2 if min(self.spacing) < 0.5 else 1
        value = round(value, digits)
        return f"{value if value else 0.0:.{digits}f}"  # no "-0.0"

    # ---------------------------------------------------------------------------------------------- input files

    def _dicom_file(self, z: int) -> Path | None:
        """The DICOM file that holds canonical axial slice ``z`` of a DICOM series, if known."""
        ct = self.ct
        if ct is None or not str(ct.kind).startswith("dicom") or len(ct.slice_files) != self.size[2]:
            return None
        return Path(ct.slice_files[z])

    def _header(self, path: Path | None) -> tuple[int | None, float | None, str] | None:
        """(InstanceNumber, z of ImagePositionPatient, file name without identifiers) of a DICOM file."""
        if path is None:
            return None
        if path not in self._headers:
            number, z, name = None, None, path.name
            try:
                import pydicom

                ds = pydicom.dcmread(str(path), stop_before_pixels=True,
                                     specific_tags=["InstanceNumber", "ImagePositionPatient"])
                if ds.get("InstanceNumber") not in (None, ""):
                    number = int(ds.InstanceNumber)
                position = ds.get("ImagePositionPatient")
                if position is not None and len(position) == 3:
                    z = float(position[2])
            except Exception:  # noqa: BLE001 - an unreadable header: the file name and grid position still name it
                pass
            if not self.keep_identifiers:
                from ..io.dicom_source import identifiers, scrub

                name = scrub(name, identifiers([path]))
            self._headers[path] = (number, z, name)
        return self._headers[path]

    def _input_index(self, axis: int, index: int) -> tuple[str, int] | None:
        """(axis letter i/j/k, 0-based index) of canonical slice ``index`` on ``axis`` in the input file's own
        voxel order, for a 3-D NIfTI/NRRD/MHA file (or a multi-frame DICOM file); None where not meaningful."""
        ct = self.ct
        if not self.located or ct.input_dimension != 3:
            return None
        if ct.kind not in VOLUME_FILES and not (ct.kind == "dicom-file" and axis == 2):
            return None
        from ..io.volume import axis_map

        amap = axis_map(tuple(ct.input_direction))
        source, flip = amap.source[axis], amap.flip[axis]
        return "ijk"[source], (int(ct.input_size[source]) - 1 - index if flip else index)

    def _stack_file(self, z: int) -> str | None:
        """The name of the image file that holds canonical axial slice ``z`` of a PNG/JPEG slice stack, if known."""
        ct = self.ct
        if ct is not None and ct.kind == "slice-stack" and len(ct.slice_files) == self.size[2]:
            return Path(ct.slice_files[z]).name
        return None

    def position(self, z: int) -> dict:
        """Canonical axial slice ``z`` for report.json, from what ``where`` names it by: ``z_mm`` (``z_mm``, rounded
        to 1e-6 mm), ``dicom_instance`` (Instance Number) and ``file`` (the DICOM or image file that holds it, its
        name without the patient's identifiers unless ``keep_identifiers``); each None where unknown."""
        z_mm = self.z_mm(z)
        header = self._header(self._dicom_file(z))
        return {"z_mm": None if z_mm is None else round(z_mm, 6) + 0.0,  # + 0.0: no -0.0
                "dicom_instance": None if header is None else header[0],
                "file": header[2] if header is not None else self._stack_file(z)}

    # ---------------------------------------------------------------------------------------------- names

    def where(self, z: int) -> str:
        """Where axial slice ``z`` is, e.g. "z = -123.5 mm (DICOM instance 18, IM0018.dcm)", "z = 40.0 mm (k = 7
        in the input file, 0-based)", "slice 31 of 48 (counted from the feet, 1 = lowest slice)"."""
        ct = self.ct
        extra = []
        header = self._header(self._dicom_file(z))
        if header is not None:
            number, _, name = header
            extra.append(f"DICOM instance {number}, {name}" if number is not None else f"DICOM file {name}")
        own = self._input_index(2, z)
        if own is not None and ct.kind == "dicom-file":
            if own[0] == "k":
                extra.append(f"frame {own[1] + 1} of the DICOM file")
        elif own is not None and own != ("k", z):
            extra.append(f"{own[0]} = {own[1]} in the input file, 0-based")
        stack_file = self._stack_file(z)
        if stack_file is not None:
            extra.append(f"file {stack_file}")
        position = self.z_mm(z)
        if position is not None:
            return f"z = {self._mm(position)} mm" + (f" ({'; '.join(extra)})" if extra else "")
        if extra:
            return f"{'; '.join(extra)}"
        return f"slice {z + 1} of {self.size[2]} ({FROM_THE_FEET})"

    def axial(self, z: int) -> str:
        """An axial slice's name for a caption: "axial slice at z = ... mm (...)"; for a one-slice image "the
        slice ..." (a single coronal or sagittal slice is named by its plane)."""
        ct = self.ct
        if self.size[2] == 1:
            if ct is None:
                return "axial slice 1 of 1"
            plane = ct.picture_plane or "axial"
            where = self.where(0)
            if where.startswith("z ="):
                return f"the {plane} slice at {where}"
            return f"the {plane} slice" if where.startswith("slice ") else f"the {plane} slice ({where})"
        where = self.where(z)
        if where.startswith("slice "):
            return f"axial {where}"
        return f"axial slice at {where}" if where.startswith("z =") else f"axial slice ({where})"

    def coronal(self, y: int) -> str:
        """A coronal slice's name: "coronal slice at y = ... mm (DICOM LPS, + = posterior)"."""
        position = self.position_mm(1, y)
        if position is None:
            return f"coronal slice {y + 1} of {self.size[1]} ({FROM_THE_FRONT})"
        own = self._input_index(1, y)
        extra = f"; {own[0]} = {own[1]} in the input file, 0-based" if own is not None and own != ("j", y) else ""
        return f"coronal slice at y = {self._mm(position)} mm (DICOM LPS, + = posterior{extra})"

    def note(self) -> str:
        """One sentence for the reader: which numbering the report's slice names use."""
        if self.size[2] == 1:
            return ""
        if self.ct is not None and self.ct.kind == "slice-stack" and len(self.ct.slice_files) == self.size[2]:
            return ("Axial slices are named by the image file that holds them (the first file in name order is taken "
                    f"as the top slice); coronal slices are {FROM_THE_FRONT}. report.json counts axial slices from 0 "
                    "at the lowest slice (the last file).")
        if not self.located:
            return (f"Axial slices are {FROM_THE_FEET} (report.json counts the same slices from 0); coronal slices "
                    f"are {FROM_THE_FRONT}.")
        dicom = self.ct is not None and len(self.ct.slice_files) == self.size[2] and self.ct.kind.startswith("dicom")
        return ("Slices are named by their position in the patient coordinates the input states: an axial slice by "
                "z in mm along the feet-to-head axis (larger z = nearer the head; DICOM viewers and 3D Slicer show the "
                "same z)"
                + (", its DICOM instance number and file" if dicom else "")
                + ("; a slice also by its 0-based voxel index (i, j or k) in the input file where that differs from "
                   "the canonical order" if self.ct.kind in VOLUME_FILES else "")
                + "; a coronal slice by y in mm in DICOM (LPS) coordinates, larger y = nearer the back (3D Slicer "
                "shows -y as A). report.json counts axial slices from 0 at the lowest (most inferior) slice.")

    def z_range(self) -> str | None:
        """"48, z = -100.0 mm (lowest) to 17.5 mm (highest)" for the input table; None without geometry or for one
        slice."""
        if not self.located or self.size[2] < 2:
            return None
        lo, hi = self.position_mm(2, 0), self.position_mm(2, self.size[2] - 1)
        return f"{self.size[2]}, z = {self._mm(lo)} mm (lowest) to {self._mm(hi)} mm (highest)"


def _gray(hu: np.ndarray, window=LUNG_WINDOW) -> np.ndarray:
    width, level = window
    lo = level - width / 2
    return (np.clip((hu - lo) / width, 0, 1) * 255).astype(np.uint8)


def _colour(segments) -> dict[int, np.ndarray]:
    return {s.label: np.array(s.color) * 255 for s in segments}


def overlay(hu: np.ndarray, lungs: np.ndarray | None, lesions: np.ndarray | None) -> np.ndarray:
    """RGB uint8 image: the slice in lung window, lesions filled (translucent), lung borders drawn."""
    rgb = np.repeat(_gray(hu)[..., None], 3, axis=2).astype(np.float32)
    if lesions is not None:
        for label, colour in _colour(LESION_SEGMENTS).items():
            m = lesions == label
            rgb[m] = (1 - LESION_OPACITY) * rgb[m] + LESION_OPACITY * colour
    if lungs is not None:
        for label, colour in _colour(LUNG_SEGMENTS).items():
            rgb[find_boundaries(lungs == label, mode="thick")] = colour
    return rgb.astype(np.uint8)


def figure_png(rgb: np.ndarray, pixel_mm: tuple[float, float], max_side: int = 512) -> str:
    """PNG (base64) resized so each pixel covers equal millimetres in both directions."""
    rows, cols = rgb.shape[:2]
    row_mm, col_mm = pixel_mm
    height, width = rows * row_mm, cols * col_mm
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    buf = io.BytesIO()
    Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _best_index(mask: np.ndarray | None, axis: int, fallback: int) -> int:
    if mask is None or not mask.any():
        return fallback
    other = tuple(a for a in range(mask.ndim) if a != axis)
    return int(np.argmax((mask > 0).sum(axis=other)))


def key_figures(image: sitk.Image, lungs: sitk.Image | None = None, lesions: sitk.Image | None = None,
                names: SliceNames | None = None) -> list[tuple[str, np.ndarray, tuple[float, float]]]:
    """[(caption, RGB uint8 image, (row mm, column mm))]: the axial and coronal slices through the most lesion (else
    the most lung), then the lesion maps (``lesion_map_figures``), for report.html (``figure_png``) and report.pdf;
    ``names`` (``SliceNames`` of the same CT) names the slices as the reader's viewer does (without it, counted
    from the feet)."""
    names = names or SliceNames(image)
    hu = sitk.GetArrayViewFromImage(image)  # z, y, x in canonical LPS
    lung = sitk.GetArrayViewFromImage(lungs) if lungs is not None else None
    lesion = sitk.GetArrayViewFromImage(lesions) if lesions is not None else None
    focus = lesion if lesion is not None and lesion.any() else lung
    sx, sy, sz = image.GetSpacing()
    nz, ny, _ = hu.shape
    what = "lesions" if focus is lesion and lesion is not None else "lungs"
    cut = lambda a, index: None if a is None else a[index]  # noqa: E731

    z = _best_index(focus, 0, nz // 2)
    axial = np.s_[z]
    out = [(f"{names.axial(z)}, most {what}",
            overlay(hu[axial], cut(lung, axial), cut(lesion, axial)), (sy, sx))]
    if nz > 1:
        y = _best_index(focus, 1, ny // 2)
        coronal = np.s_[::-1, y]  # superior at the top
        out.append((f"{names.coronal(y)}, most {what}",
                    overlay(hu[coronal], cut(lung, coronal), cut(lesion, coronal)), (sz, sx)))
    return out + lesion_map_figures(image, lungs, lesions)


def lesion_map(lungs: dict[int, np.ndarray], lesions: dict[int, np.ndarray], axis: int) -> np.ndarray:
    """RGB uint8: the lesions (``lesions``: {label: mask} of the volume, z, y, x canonical LPS) projected along
    ``axis`` onto the lungs' silhouette (``lungs``: {label: mask}): lungs dark in their colours with their outline
    (seen from the side, where the two lungs overlap, one grey silhouette), then ground glass, consolidation and
    crazy paving, each drawn over the one before where they lie on one line of sight."""
    shape = [n for i, n in enumerate(next(iter(lesions.values())).shape) if i != axis]
    rgb = np.zeros((*shape, 3), np.float32)
    lung_colours = _colour(LUNG_SEGMENTS)
    silhouettes = {label: mask.any(axis=axis) for label, mask in lungs.items()}
    if axis == 2 and silhouettes:
        silhouettes, lung_colours = {0: np.logical_or.reduce(list(silhouettes.values()))}, {0: np.full(3, 170.0)}
    for label, silhouette in silhouettes.items():
        rgb[silhouette] = 0.35 * lung_colours[label]
        rgb[find_boundaries(silhouette, mode="inner")] = lung_colours[label]
    for label, colour in _colour(LESION_SEGMENTS).items():
        rgb[lesions[label].any(axis=axis)] = colour
    return rgb.astype(np.uint8)


def lesion_map_figures(image: sitk.Image, lungs: sitk.Image | None, lesions: sitk.Image | None
                       ) -> list[tuple[str, np.ndarray, tuple[float, float]]]:
    """[(caption, RGB uint8 image, (row mm, column mm))]: the lesions of all slices at once, seen from the front, from
    the side and from the feet (``lesion_map``), where they lie across the lungs: one side or both, upper or lower,
    peripheral or central, anterior or posterior. Empty for a single slice or a CT without lesions."""
    lesion = sitk.GetArrayViewFromImage(lesions) if lesions is not None else None
    if lesion is None or lesion.shape[0] < 2:
        return []
    by_label = {s.label: lesion == s.label for s in LESION_SEGMENTS}  # each mask once, for the three views
    if not any(mask.any() for mask in by_label.values()):
        return []
    lung = sitk.GetArrayViewFromImage(lungs) if lungs is not None else None
    lung_by_label = {} if lung is None else {s.label: lung == s.label for s in LUNG_SEGMENTS}
    sx, sy, sz = image.GetSpacing()
    return [
        ("lesion map, front view: all slices projected (head up, patient's right on the left)",
         _around_content(lesion_map(lung_by_label, by_label, 1)[::-1]), (sz, sx)),
        ("lesion map, side view from the patient's left: all slices projected (head up, front on the left)",
         _around_content(lesion_map(lung_by_label, by_label, 2)[::-1]), (sz, sy)),
        ("lesion map, view from the feet as axial slices are shown: all slices projected (front up, patient's right "
         "on the left)",
         _around_content(lesion_map(lung_by_label, by_label, 0)), (sy, sx)),
    ]


def _around_content(rgb: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """``rgb`` cut to what is drawn (the lungs and lesions), with a margin of ``margin`` of its size."""
    rows, cols = np.nonzero(rgb.any(axis=2))
    if rows.size == 0:
        return rgb
    pad_r, pad_c = round(margin * rgb.shape[0]), round(margin * rgb.shape[1])
    return rgb[max(0, rows.min() - pad_r):rows.max() + 1 + pad_r, max(0, cols.min() - pad_c):cols.max() + 1 + pad_c]


def heatmap_figures(image: sitk.Image, heatmaps: dict[str, dict[str, sitk.Image]],
                    names: SliceNames | None = None) -> list[tuple[str, np.ndarray, tuple[float, float]]]:
    """[(caption, RGB uint8 image, (row mm, column mm))]: per model, the axial slice where its default map (the first
    of {method: map}, on the canonical grid) is strongest, with every map of that model on the same slice."""
    from ..explain.overlay import overlay_rgb  # not at import: the explain package loads torch

    names = names or SliceNames(image)
    hu = sitk.GetArrayViewFromImage(image)
    sx, sy, _ = image.GetSpacing()
    out = []
    for name, maps in heatmaps.items():
        arrays = {method: sitk.GetArrayViewFromImage(m) for method, m in maps.items()}
        default = next(iter(arrays.values()), None)
        if default is None or default.shape != hu.shape or not np.any(default > 0):
            continue
        z = int(np.argmax(default.reshape(default.shape[0], -1).sum(axis=1)))
        for method, heat in arrays.items():
            if heat.shape == hu.shape:
                rgb = overlay_rgb(_gray(hu[z]) / 255.0, heat[z], floor=HEATMAP_THRESHOLD)
                out.append((f"{name} {method}, {names.axial(z)}, strongest {name} map", np.asarray(rgb), (sy, sx)))
    return out


def attention_charts(classifiers: dict[str, dict], names: SliceNames | None = None) -> list[tuple[str, str]]:
    """[(caption, base64 PNG)]: a bar chart of the attention per slice of every classifier whose result has
    ``slice_attention`` ({canonical z: weight}; multiple-instance classifiers, e.g. DA-CMIL's Fig. 8 scores). With
    ``names`` that know the CT's geometry the bars stand at the slices' z (mm), else at the slice counted from the
    feet (1 = lowest)."""
    from matplotlib.figure import Figure

    out = []
    for name, result in classifiers.items():
        weights = result.get("slice_attention") if isinstance(result, dict) else None
        if not weights:
            continue
        rows = sorted((int(z), float(w)) for z, w in weights.items())
        located = names is not None and names.located and all(0 <= z < names.size[2] for z, _ in rows)
        where = [names.position_mm(2, z) if located else z + 1 for z, _ in rows]
        width = max(0.1, 0.8 * abs(_step(where))) if located else max(1.0, 0.8 * _step(where))
        fig = Figure(figsize=(6.4, 2.4), dpi=100)
        ax = fig.add_subplot()
        ax.bar(where, [r[1] for r in rows], width=width, color="#c0392b")
        ax.set_xlabel("axial slice position z (mm, patient coordinates; head to the right)" if located
                      else f"axial slice ({FROM_THE_FEET})")
        ax.set_ylabel("attention weight")
        ax.set_title(f"{name}: attention per slice")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        out.append((f"{name} attention per axial slice (the slices its decision weighs most; "
                    + ("bars at each slice's z in mm)" if located else f"slices {FROM_THE_FEET})"),
                    base64.b64encode(buffer.getvalue()).decode("ascii")))
    return out


def _step(numbers: list[float]) -> float:
    return float(np.median(np.diff(numbers))) if len(numbers) > 1 else 1.0
