"""State of the Analyze module, kept in the scene's parameter node: CovidCTAnalysis.mrml.analyze_logic."""

from CovidCTAnalysis.mrml.analyze_logic import DEVICES, AnalyzeParameters

__all__ = ["DEVICES", "AnalyzeParameters"]
