"""DICOM outputs of ``covidct analyze`` when the input is DICOM (issue 22): ``lungs.seg.dcm`` and ``lesions.seg.dcm``
(DICOM Segmentation), beside the .seg.nrrd files, holding the same masks voxel for voxel, and each classifier heatmap
as a DICOM Parametric Map beside its .nrrd (``heatmap-MODEL.dcm``, ``heatmap-MODEL-METHOD.dcm``).

They are extras for a hospital's archive, never a reason to lose the analysis: without highdicom (the ``dicom``
extra; it needs Python 3.10 or newer) or with source headers a derived object cannot be built from, the .dcm file
is left out, the run goes on and the report's ``warnings`` say which file is missing and why. The source headers
are read once per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import SimpleITK as sitk

from ..io import CTVolume
from ..io.dicom_source import is_dicom_input, source_datasets
from ..labels import Segment

#: Series numbers of the derived series (high, so they sort after the scanner's own series).
SERIES_NUMBERS = {"lungs": 9001, "lesions": 9002}
FIRST_HEATMAP_SERIES = 9101


class DicomOutputs:
    """Writes derived DICOM objects for one run; ``enabled`` is False for non-DICOM inputs (nothing is written)."""

    def __init__(self, ct: CTVolume, warnings: list[str], keep_identifiers: bool = False):
        self.ct = ct
        self.enabled = is_dicom_input(ct)
        self.keep_identifiers = keep_identifiers
        self._warnings = warnings
        self._sources: list | None = None
        self._heatmaps = 0

    def _ready(self, path: Path) -> bool:
        if not self.enabled:
            return False
        try:
            import highdicom  # noqa: F401
        except ImportError:
            self.enabled = False
            self._warnings.append("DICOM outputs (.dcm) not written: they need the highdicom package (pip install "
                                  "'CovidCTAnalysis[dicom]', Python 3.10 or newer)")
            return False
        if self._sources is None:
            try:
                self._sources = source_datasets(self.ct, self.keep_identifiers)
            except Exception as exc:  # noqa: BLE001 - GDCM read them; pydicom may still refuse a damaged header
                self.enabled = False
                self._warnings.append(f"DICOM outputs (.dcm) not written: the source headers could not be read "
                                      f"({type(exc).__name__})")
                return False
        return True

    def segmentation(self, labels: sitk.Image, path: Path, segments: Sequence[Segment], algorithm: tuple[str, str],
                     what: str) -> bool:
        """``labels`` (on the input's grid) as a DICOM SEG at ``path``; False (and a warning) when not written."""
        if not self._ready(path):
            return False
        from ..io.dicomseg import write_segmentation

        try:
            write_segmentation(labels, path, self._sources, segments, algorithm=algorithm,
                               series_number=SERIES_NUMBERS[what], label=what.upper(),
                               description=f"CovidCTAnalysis {what}", keep_identifiers=self.keep_identifiers)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # headers unfit for a derived object
            self._warnings.append(f"{path.name} not written: {type(exc).__name__}: {str(exc)[:160]}")
            return False
        return True

    def parametric_map(self, heatmap: sitk.Image, path: Path, model: str, method: str) -> bool:
        """``heatmap`` (on the input's grid) as a DICOM Parametric Map at ``path``; False (and a warning) when not
        written."""
        if not self._ready(path):
            return False
        from ..io.dicompm import write_parametric_map

        number = FIRST_HEATMAP_SERIES + self._heatmaps
        self._heatmaps += 1
        try:
            write_parametric_map(heatmap, path, self._sources, model=model, method=method, series_number=number,
                                 keep_identifiers=self.keep_identifiers)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # headers unfit for a derived object
            self._warnings.append(f"{path.name} not written: {type(exc).__name__}: {str(exc)[:160]}")
            return False
        return True
