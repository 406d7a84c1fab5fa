"""The Analyze module's logic: CovidCTAnalysis.mrml.analyze_logic (no Qt), shared with the browser app."""

from CovidCTAnalysis.mrml.analyze_logic import AnalyzeLogic, available_classifiers, models_argument

__all__ = ["AnalyzeLogic", "available_classifiers", "models_argument"]
