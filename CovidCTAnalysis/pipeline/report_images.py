"""Key images for report.html: lung-window slices with lung contours and lesion fills, as base64 PNG.

Axial images are shown in radiological convention (patient right on the image's left, anterior up), coronal images
with superior up; pixels are resampled to square millimetres so anatomy keeps its proportions.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import SimpleITK as sitk
from PIL import Image
from skimage.segmentation import find_boundaries

from ..labels import LESION_SEGMENTS, LUNG_SEGMENTS

LUNG_WINDOW = (1500.0, -600.0)  # width, level (HU)
LESION_OPACITY = 0.45
HEATMAP_THRESHOLD = 0.2  # heatmap values below are not drawn (as the Slicer overlay's default)


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


def _png(rgb: np.ndarray, pixel_mm: tuple[float, float], max_side: int = 512) -> str:
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


def key_figures(image: sitk.Image, lungs: sitk.Image | None = None,
                lesions: sitk.Image | None = None) -> list[tuple[str, np.ndarray, tuple[float, float]]]:
    """[(caption, RGB uint8 image, (row mm, column mm))]: the axial and coronal slices through the most lesion (else
    the most lung), for report.html (``key_images``) and report.pdf."""
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
    out = [(f"axial slice {z + 1} of {nz} (most {what})",
            overlay(hu[axial], cut(lung, axial), cut(lesion, axial)), (sy, sx))]
    if nz > 1:
        y = _best_index(focus, 1, ny // 2)
        coronal = np.s_[::-1, y]  # superior at the top
        out.append((f"coronal slice {y + 1} of {ny} (most {what})",
                    overlay(hu[coronal], cut(lung, coronal), cut(lesion, coronal)), (sz, sx)))
    return out


def key_images(image: sitk.Image, lungs: sitk.Image | None = None,
               lesions: sitk.Image | None = None) -> list[tuple[str, str]]:
    """[(caption, base64 PNG)]: ``key_figures`` for report.html."""
    return [(caption, _png(rgb, mm)) for caption, rgb, mm in key_figures(image, lungs, lesions)]


def heatmap_figures(image: sitk.Image, heatmaps: dict[str, dict[str, sitk.Image]]
                    ) -> list[tuple[str, np.ndarray, tuple[float, float]]]:
    """[(caption, RGB uint8 image, (row mm, column mm))]: per model, the axial slice where its default map (the first
    of {method: map}, on the canonical grid) is strongest, with every map of that model on the same slice."""
    from ..explain.overlay import overlay_rgb  # not at import: the explain package loads torch

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
                out.append((f"{name} {method}, axial slice {z + 1} of {hu.shape[0]} (strongest {name} map)",
                            np.asarray(rgb), (sy, sx)))
    return out


def heatmap_images(image: sitk.Image, heatmaps: dict[str, dict[str, sitk.Image]]) -> list[tuple[str, str]]:
    """[(caption, base64 PNG)]: ``heatmap_figures`` for report.html, side by side per model."""
    return [(caption, _png(rgb, mm)) for caption, rgb, mm in heatmap_figures(image, heatmaps)]


def attention_charts(classifiers: dict[str, dict]) -> list[tuple[str, str]]:
    """[(caption, base64 PNG)]: a bar chart of the attention per slice of every classifier whose result has
    ``slice_attention`` ({canonical z: weight}; multiple-instance classifiers, e.g. DA-CMIL's Fig. 8 scores)."""
    from matplotlib.figure import Figure

    out = []
    for name, result in classifiers.items():
        weights = result.get("slice_attention") if isinstance(result, dict) else None
        if not weights:
            continue
        rows = sorted((int(z) + 1, float(w)) for z, w in weights.items())
        fig = Figure(figsize=(6.4, 2.4), dpi=100)
        ax = fig.add_subplot()
        ax.bar([r[0] for r in rows], [r[1] for r in rows], width=max(1.0, 0.8 * _step([r[0] for r in rows])),
               color="#c0392b")
        ax.set_xlabel("axial slice")
        ax.set_ylabel("attention weight")
        ax.set_title(f"{name}: attention per slice")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        out.append((f"{name} attention per axial slice (the slices its decision weighs most)",
                    base64.b64encode(buffer.getvalue()).decode("ascii")))
    return out


def _step(numbers: list[int]) -> float:
    return float(np.median(np.diff(numbers))) if len(numbers) > 1 else 1.0
