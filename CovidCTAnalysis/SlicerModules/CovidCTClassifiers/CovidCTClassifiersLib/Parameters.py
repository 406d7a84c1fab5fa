"""State of the classifiers module, kept in the scene's parameter node."""

from CovidCTAnalysis.mrml.parameters import Bool, Choice, Float, NodeReference, ParameterNode, String

DEVICES = ("auto", "cpu", "cuda")


class ClassifierParameters(ParameterNode):
    """CT, classifier (a model name of docs/CONTRACTS.md), device, heatmap display."""

    module_name = "CovidCTClassifiers"
    inputVolume = NodeReference("vtkMRMLScalarVolumeNode")
    classifier = String("")
    device = Choice("auto", DEVICES)
    showHeatmap = Bool(True)
    heatmapOpacity = Float(0.4, minimum=0.0, maximum=1.0)
    heatmapThreshold = Float(0.5, minimum=0.0, maximum=1.0)
