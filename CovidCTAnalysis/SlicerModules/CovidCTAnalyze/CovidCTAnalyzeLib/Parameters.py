"""State of the Analyze module, kept in the scene's parameter node (saved and restored with the scene)."""

from CovidCTAnalysis.mrml.parameters import Bool, Choice, Float, NodeReference, ParameterNode, String, StringList

DEVICES = ("auto", "cpu", "cuda")


class AnalyzeParameters(ParameterNode):
    """Input volume, device, classifiers (empty: every available one), heatmap display, output folder."""

    module_name = "CovidCTAnalyze"
    inputVolume = NodeReference("vtkMRMLScalarVolumeNode")
    device = Choice("auto", DEVICES)
    classifiers = StringList(())
    heatmapThreshold = Float(0.5, minimum=0.0, maximum=1.0)
    heatmapOpacity = Float(0.4, minimum=0.0, maximum=1.0)
    show3D = Bool(True)
    outputFolder = String("")  # empty: a temporary folder, removed once the results are in the scene
