"""Label maps as DICOM Segmentation objects (highdicom), for CTs read from DICOM (issue 22: outputs a hospital keeps).

A SEG written here:
- references its source series: highdicom copies the patient, study and frame-of-reference attributes of the
  source headers and lists their SOP instances; frame k of the mask (on the input's own grid, ``to_input_grid``) is
  derived from input slice k (``CTVolume.input_files``), so the SEG lies exactly where the .seg.nrrd does;
- is a BINARY segmentation, one segment per label value (segment number = label value, as in the .seg.nrrd), every
  segment of the contract listed even when empty, empty frames omitted (all kept for an empty mask);
- codes each segment with the project terminology (Resources/Terminology, via ``segnrrd.terminology_codes``):
  category, type and modifier (right/left lung), lesions with the anatomic region lung; crazy paving has no
  standard code, so it carries the private code ``99COVIDCT CRAZYPAVING`` "Crazy paving pattern", declared in the
  Coding Scheme Identification Sequence;
- names the algorithm (model name and registry version) and marks its content "research use only";
- by default carries no patient name, ID or birth date (``dicom_source.remove_identifiers``); study, series and
  frame-of-reference UIDs stay so viewers can still place it on the CT.
Written atomically (``writers.atomic_path``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..labels import Segment
from . import segnrrd
from .dicom_source import remove_identifiers
from .writers import atomic_path

MANUFACTURER = "CovidCTAnalysis"
PRIVATE_SCHEME = "99COVIDCT"
PRIVATE_SCHEME_NAME = "CovidCTAnalysis local codes"
LUNG = ("SCT", "39607008", "Lung")
# without a terminology entry (a wheel installed without Resources/): a generic tissue segment
FALLBACK_CATEGORY = ("SCT", "85756007", "Tissue")
FALLBACK_TYPE = ("SCT", "85756007", "Tissue")


def _coded(triple):
    from highdicom.sr import CodedConcept

    scheme, value, meaning = triple
    return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def segment_description(segment: Segment, algorithm: tuple[str, str]):
    """The highdicom description of one segment: project terminology codes, colour, algorithm name and version."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    term = segnrrd.terminology_codes().get(segment.name)
    category = term["category"] if term else FALLBACK_CATEGORY
    type_ = term["type"] if term else FALLBACK_TYPE
    name, version = algorithm
    description = hd.seg.SegmentDescription(
        segment_number=int(segment.label),
        segment_label=segment.name[:64],
        segmented_property_category=_coded(category),
        segmented_property_type=_coded(type_),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=name, version=version, family=codes.cid7162.ArtificialIntelligence),
        anatomic_regions=[_coded(LUNG)] if term and term["anatomy"] else None,
        display_color=hd.color.CIELabColor(*_lab(segment.color)),
    )
    if term and term["modifier"]:
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            _coded(term["modifier"])]
    return description


def _lab(rgb: Sequence[float]) -> tuple[float, float, float]:
    """sRGB (0..1) to CIE L*a*b* (D65), as DICOM's Recommended Display CIELab Value wants it."""
    from skimage.color import rgb2lab

    lab = rgb2lab(np.asarray(rgb, dtype=float).reshape(1, 1, 3))[0, 0]
    return float(lab[0]), float(np.clip(lab[1], -128, 127)), float(np.clip(lab[2], -128, 127))


def _uses_private_codes(descriptions) -> bool:
    return any(seq[0].CodingSchemeDesignator == PRIVATE_SCHEME
               for d in descriptions
               for seq in (d.SegmentedPropertyCategoryCodeSequence, d.SegmentedPropertyTypeCodeSequence))


def build_segmentation(labels: sitk.Image, sources: Sequence, segments: Sequence[Segment], *,
                       algorithm: tuple[str, str], series_number: int, label: str, description: str,
                       keep_identifiers: bool = False):
    """A highdicom Segmentation of ``labels`` (uint8 label map on the input's grid, one frame per source slice)."""
    import highdicom as hd
    from pydicom.dataset import Dataset

    from .. import __version__

    frames = np.ascontiguousarray(sitk.GetArrayFromImage(labels), dtype=np.uint8)
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    frames = frames.reshape(-1, rows, cols)
    descriptions = [segment_description(s, algorithm) for s in sorted(segments, key=lambda s: s.label)]
    seg = hd.seg.Segmentation(
        source_images=list(sources),
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=f"{MANUFACTURER} {algorithm[0]}",
        software_versions=__version__,
        device_serial_number="none",
        content_label=label,
        content_description=f"{description}; research use only"[:64],
        omit_empty_frames=bool(frames.any()),  # an empty mask (no lungs found) keeps its frames, without a warning
    )
    seg.SeriesDescription = f"{description} (research use only)"[:64]
    if _uses_private_codes(descriptions):
        scheme = Dataset()
        scheme.CodingSchemeDesignator = PRIVATE_SCHEME
        scheme.CodingSchemeName = PRIVATE_SCHEME_NAME
        scheme.CodingSchemeResponsibleOrganization = MANUFACTURER
        seg.CodingSchemeIdentificationSequence = [scheme]
    if not keep_identifiers:
        remove_identifiers(seg)
    return seg


def write_segmentation(labels: sitk.Image, path: str | Path, sources: Sequence, segments: Sequence[Segment],
                       **options) -> Path:
    """Build the SEG (``build_segmentation``) and write it to ``path`` atomically."""
    path = Path(path)
    seg = build_segmentation(labels, sources, segments, **options)
    with atomic_path(path) as tmp:
        seg.save_as(str(tmp), enforce_file_format=True)
    return path
