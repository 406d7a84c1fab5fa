"""State of the lesion segmentation module, kept in the scene's parameter node: CovidCTAnalysis.mrml.lesion_logic."""

from CovidCTAnalysis.mrml.lesion_logic import DEVICES, LesionSegmentationParameters

__all__ = ["DEVICES", "LesionSegmentationParameters"]
