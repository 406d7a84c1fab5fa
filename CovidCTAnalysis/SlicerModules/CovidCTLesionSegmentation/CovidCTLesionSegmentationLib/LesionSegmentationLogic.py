"""The lesion segmentation module's logic: CovidCTAnalysis.mrml.lesion_logic (no Qt), shared with the browser app."""

from CovidCTAnalysis.mrml.lesion_logic import (
    KIND_ATTRIBUTE,
    OUTPUT_NAME,
    LesionSegmentationLogic,
    lesion_summary,
    segment_lesions_command,
)

__all__ = ["KIND_ATTRIBUTE", "OUTPUT_NAME", "LesionSegmentationLogic", "lesion_summary", "segment_lesions_command"]
