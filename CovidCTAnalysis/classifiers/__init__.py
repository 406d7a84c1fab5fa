"""Classifiers: one subpackage per seed system (model, inputs, train, infer, explain).

A seed system never imports another seed system; what they share lives in ``CovidCTAnalysis.explain`` (Grad-CAM)
and ``CovidCTAnalysis.evaluation`` (metrics and plots for every classifier).
"""
