"""Lesion quantification: volume per class (mL), % involvement per lung and in total, severity band.

% involvement follows seed 001, section 2.8 ("the ratio of these two numbers determines the percentage of the lung
volume that is infected"): lesion voxels inside the lung divided by lung voxels, here per lung (labels 1 right,
2 left of docs/CONTRACTS.md) and for both lungs together. Lesion volumes count every lesion voxel, those outside the
lung mask too: segment_lesions keeps a volume's lesions inside the lung region closed by ``GATE_CLOSING_MM`` (dense
consolidation at the pleura that the lung mask leaves out) and segments a picture whole, so the two can differ.

Severity band: the CT-0..CT-4 scale of MosMedData (Morozov et al., "MosMedData: Chest CT Scans With COVID-19 Related
Findings Dataset", medRxiv 2020.05.20.20100362), which grades by the percentage of lung parenchyma involved:
CT-1 up to 25 %, CT-2 25-50 %, CT-3 50-75 %, CT-4 75 % and more; CT-0 means no findings. Our choice for CT-0: total
involvement below 0.1 % (a handful of voxels is segmentation noise, not a finding). It is a research aid computed from
an automatic segmentation, not a clinical grading.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..labels import CONSOLIDATION, CRAZY_PAVING, GGO, LEFT_LUNG, RIGHT_LUNG

SEVERITY_SCALE = "MosMedData CT-0..CT-4 (Morozov et al. 2020), by % of lung volume involved"
NO_FINDINGS_BELOW_PERCENT = 0.1
#: (band, lower bound in % inclusive, description)
SEVERITY_BANDS = (
    ("CT-0", 0.0, "no lesions found"),
    ("CT-1", NO_FINDINGS_BELOW_PERCENT, "mild: up to 25 % of the lungs involved"),
    ("CT-2", 25.0, "moderate: 25-50 % of the lungs involved"),
    ("CT-3", 50.0, "severe: 50-75 % of the lungs involved"),
    ("CT-4", 75.0, "critical: 75 % or more of the lungs involved"),
)


def severity_band(percent_total: float) -> dict:
    """{"scale", "band", "description"} for a total % involvement."""
    band, _, text = next(b for b in reversed(SEVERITY_BANDS) if percent_total >= b[1])
    return {"scale": SEVERITY_SCALE, "band": band, "description": text}


def _percent(lesion: np.ndarray, lung: np.ndarray) -> float:
    n = int(np.count_nonzero(lung))
    return 100.0 * int(np.count_nonzero(lesion & lung)) / n if n else 0.0


def quantify(lesions: sitk.Image, lungs: sitk.Image) -> dict:
    """Lesion numbers for report.json: ggo_ml, consolidation_ml, total_ml, percent_involvement, severity.

    ``lesions``: uint8 label map (0, 1 GGO, 2 consolidation, 3 crazy paving); ``lungs``: label map on the same grid
    (1 right, 2 left; any other positive value counts for the total only). A lung with no voxels has 0 % involvement
    (its *_lung_ml is 0, which tells the two apart). Volumes use the voxel spacing (for a 2-D slice: area times the
    slice's nominal thickness).
    """
    les = sitk.GetArrayViewFromImage(lesions)
    lung = sitk.GetArrayViewFromImage(lungs)
    if les.shape != lung.shape:
        raise ValueError(f"lesion map {les.shape} and lung map {lung.shape} differ in size")
    voxel_ml = float(np.prod(lesions.GetSpacing())) / 1000.0
    infected = les > 0
    numbers = {
        "ggo_ml": float(np.count_nonzero(les == GGO) * voxel_ml),
        "consolidation_ml": float(np.count_nonzero(les == CONSOLIDATION) * voxel_ml),
        "total_ml": float(np.count_nonzero(infected) * voxel_ml),
        "percent_involvement": {
            "right": _percent(infected, lung == RIGHT_LUNG),
            "left": _percent(infected, lung == LEFT_LUNG),
            "total": _percent(infected, lung > 0),
        },
        "lung_ml": {
            "right": float(np.count_nonzero(lung == RIGHT_LUNG) * voxel_ml),
            "left": float(np.count_nonzero(lung == LEFT_LUNG) * voxel_ml),
        },
    }
    if np.any(les == CRAZY_PAVING):
        numbers["crazy_paving_ml"] = float(np.count_nonzero(les == CRAZY_PAVING) * voxel_ml)
    numbers["severity"] = severity_band(numbers["percent_involvement"]["total"])
    return numbers
