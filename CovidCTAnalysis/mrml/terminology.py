"""Standard terminology for our segments: Resources/Terminology/SegmentationCategoryTypeModifier-CovidCTAnalysis.term.json.

The file follows the DICOM segment-context schema that 3D Slicer's Terminologies module reads (the same kind of
file SlicerTotalSegmentator ships for its structures): category / type / type-modifier codes, a display colour and a
``3dSlicerLabel`` per entry. Our labels (CovidCTAnalysis.labels) map onto it by name:

- lungs: category Anatomical Structure (SCT 123037004), type Lung (SCT 39607008), modifier Right (SCT 24028007) or
  Left (SCT 7771000);
- lesions, the CT patterns of COVID-19 pneumonia that the iCovid paper segments (seed 000, Section 4.1: GGO,
  consolidation, crazy paving): category Morphologically Altered Structure (SCT 49755003), anatomic region Lung
  (SCT 39607008), and type
  - ground-glass opacity: DCM 112120 "Ground glass opacity" (DICOM CID 6104, Abnormal Opacity Finding or Feature),
  - consolidation: RADLEX RID43255 "Consolidation" (RadLex, after the Fleischner Society glossary),
  - crazy paving: 99COVIDCT CRAZYPAVING "Crazy paving pattern". We found no code for the crazy-paving pattern that we
    could verify offline in SNOMED CT or DICOM, so it carries a private code (DICOM reserves designators starting
    with "99" for local schemes); replace it when a verified standard code is at hand,
  - localized lesion (DeCoVNet's CAM + 3DCC region, seed 002 Section II-E): SCT 52988006 "Lesion",
  - suspected infection (the intensity pseudo-mask of seed 001 Section 2.7.2, for annotators to correct): private
    99COVIDCT SUSPINFECT "Suspected infection" (a suggestion, not a finding: no standard code says that),
  - lobe-patch's infected region (seed 001 Section 2.8): private 99COVIDCT PATCHINFECT;
- lobe-patch's right and left k-means lung regions (seed 001 Section 2.3, not anatomical lobes): category Anatomical
  Structure, private type 99COVIDCT KMLUNGREGION, modifier Right or Left.

Colours are the colours of CovidCTAnalysis.labels (a test keeps the two in step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TERMINOLOGY_FILE = (
    Path(__file__).resolve().parents[2] / "Resources" / "Terminology"
    / "SegmentationCategoryTypeModifier-CovidCTAnalysis.term.json"
)
#: Anatomic context of the lesions' region code (the context Slicer ships as its default anatomy list).
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
LUNG_REGION = ("SCT", "39607008", "Lung")


@dataclass(frozen=True)
class Code:
    scheme: str
    value: str
    meaning: str


@dataclass(frozen=True)
class TerminologyEntry:
    """The codes of one segment; ``serialized()`` gives the string Slicer stores in a segment's terminology tag."""

    context: str
    category: Code
    type: Code
    modifier: Code | None
    region: Code | None
    color: tuple[int, int, int]

    def serialized(self) -> str:
        import slicer

        empty = Code("", "", "")
        modifier = self.modifier or empty
        region = self.region or empty
        return slicer.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry(
            self.context,
            self.category.value, self.category.scheme, self.category.meaning,
            self.type.value, self.type.scheme, self.type.meaning,
            modifier.value, modifier.scheme, modifier.meaning,
            ANATOMIC_CONTEXT if self.region else "",
            region.value, region.scheme, region.meaning,
            "", "", "",
        )


def _code(item: dict) -> Code:
    return Code(item["CodingSchemeDesignator"], item["CodeValue"], item["CodeMeaning"])


@lru_cache(maxsize=None)
def terminology_entries(path: Path = TERMINOLOGY_FILE) -> dict[str, TerminologyEntry]:
    """{3dSlicerLabel: entry} for every type and type modifier in the terminology file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    context = data["SegmentationCategoryTypeContextName"]
    entries: dict[str, TerminologyEntry] = {}
    for category in data["SegmentationCodes"]["Category"]:
        region = Code(*LUNG_REGION) if category.get("showAnatomy") else None
        for type_ in category["Type"]:
            color = tuple(type_.get("recommendedDisplayRGBValue", (128, 128, 128)))
            entries[type_["3dSlicerLabel"]] = TerminologyEntry(context, _code(category), _code(type_), None, region,
                                                              color)
            for modifier in type_.get("Modifier", []):
                entries[modifier["3dSlicerLabel"]] = TerminologyEntry(
                    context, _code(category), _code(type_), _code(modifier), region,
                    tuple(modifier.get("recommendedDisplayRGBValue", color)))
    return entries


def entry_for(segment_name: str) -> TerminologyEntry:
    """The terminology entry of one of our segment names ('right lung', 'consolidation', ...)."""
    try:
        return terminology_entries()[segment_name]
    except KeyError:
        raise KeyError(f"segment {segment_name!r} has no entry in {TERMINOLOGY_FILE.name}") from None


def load_terminology(terminologies_logic) -> str:
    """Load our terminology file into a Terminologies module logic (once); returns its context name."""
    context = json.loads(TERMINOLOGY_FILE.read_text(encoding="utf-8"))["SegmentationCategoryTypeContextName"]
    if context not in _loaded_names(terminologies_logic):
        loaded = terminologies_logic.LoadTerminologyFromFile(str(TERMINOLOGY_FILE))
        if loaded != context:
            raise RuntimeError(f"Slicer could not load the terminology file {TERMINOLOGY_FILE}")
    return context


def _loaded_names(terminologies_logic) -> list[str]:
    import vtk

    names = vtk.vtkStringArray()
    terminologies_logic.GetLoadedTerminologyNames(names)
    return [names.GetValue(i) for i in range(names.GetNumberOfValues())]
