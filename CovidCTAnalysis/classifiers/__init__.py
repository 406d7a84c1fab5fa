"""Classifiers: one subpackage per seed system (model, inputs, train, infer, explain, system), one interface.

Every system implements ``interface.Classifier`` in its ``system.py`` and answers with one ``ClassifierResult``;
``table`` finds the runnable ones (registered as classifiers, with a subpackage) without importing torch. A seed
system never imports another seed system; what they share lives in ``CovidCTAnalysis.explain`` (CAM, Grad-CAM, LRP)
and ``CovidCTAnalysis.evaluation`` (metrics and plots for every classifier).

Public API:
    runnable_classifiers(registry=None) -> [ClassifierInfo]   name, version, title, paper, explanation, inputs,
                                                              needs_lungs of every runnable classifier
    classifier_names(registry=None) -> [str]                  their names, in registry order
    refusal(name, ct) -> str | None                           why ``name`` cannot run on a CTVolume (None: it can)
    load_classifier(name, device, registry=None) -> Classifier
"""

from .interface import INPUT_KINDS, SLICE, VOLUME, Classifier, ClassifierResult
from .table import ClassifierInfo, classifier_names, load_classifier, refusal, runnable_classifiers

__all__ = ["INPUT_KINDS", "SLICE", "VOLUME", "Classifier", "ClassifierInfo", "ClassifierResult", "classifier_names",
           "load_classifier", "refusal", "runnable_classifiers"]
