"""Classifier heatmaps as DICOM Parametric Map objects (highdicom), for CTs read from DICOM (issue 22).

A map written here holds the heatmap of ``heatmap-MODEL[-METHOD].nrrd`` on the same grid: frame k of the map comes
from input slice k (``CTVolume.input_files``), values are stored as 32-bit floats (the 0..1 map itself, no
rescaling), with a Real World Value Mapping of slope 1 and no unit saying what they are (the model and the
explanation method). Like the SEG (``dicomseg``) it references the source series and frame of reference, carries no
patient name, ID or birth date unless asked, is marked "research" content, and is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .dicom_source import remove_identifiers
from .dicomseg import MANUFACTURER
from .writers import atomic_path


def build_parametric_map(heatmap: sitk.Image, sources: Sequence, *, model: str, method: str, series_number: int,
                         keep_identifiers: bool = False):
    """A highdicom ParametricMap of ``heatmap`` (float map on the input's grid, one frame per source slice)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .. import __version__

    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    frames = np.ascontiguousarray(sitk.GetArrayFromImage(heatmap), dtype=np.float32).reshape(-1, rows, cols)
    frames = np.nan_to_num(frames, nan=0.0, posinf=1.0, neginf=0.0)
    low, high = float(frames.min(initial=0.0)), float(frames.max(initial=1.0))
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=method[:16].upper(),
        lut_explanation=f"{model} {method} explanation map, 0..1 (research use only)"[:64],
        unit=codes.UCUM.NoUnits,
        value_range=(low, high),
        slope=1.0,
        intercept=0.0,
    )
    pm = hd.pm.ParametricMap(
        source_images=list(sources),
        pixel_array=frames,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=f"{MANUFACTURER} {model}",
        software_versions=__version__,
        device_serial_number="none",
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.content.VOILUTTransformation(window_center=0.5, window_width=1.0)],
        content_label="HEATMAP",
        content_description=f"{model} {method} heatmap; research use only"[:64],
    )
    pm.SeriesDescription = f"CovidCTAnalysis {model} {method} heatmap (research use only)"[:64]
    # General Series Laterality (type 2C) is required for a paired body part without Image/Frame Laterality
    # (dciodvfy requires it here); the map covers both lungs, so it is present and empty
    if "Laterality" not in pm:
        pm.Laterality = ""
    if not keep_identifiers:
        remove_identifiers(pm)
    return pm


def write_parametric_map(heatmap: sitk.Image, path: str | Path, sources: Sequence, **options) -> Path:
    """Build the map (``build_parametric_map``) and write it to ``path`` atomically."""
    path = Path(path)
    pm = build_parametric_map(heatmap, sources, **options)
    with atomic_path(path) as tmp:
        pm.save_as(str(tmp), enforce_file_format=True)
    return path
