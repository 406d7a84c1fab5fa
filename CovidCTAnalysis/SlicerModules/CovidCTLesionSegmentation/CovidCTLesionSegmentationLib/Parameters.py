"""State of the lesion segmentation module, kept in the scene's parameter node."""

from CovidCTAnalysis.mrml.parameters import Choice, NodeReference, ParameterNode, String

DEVICES = ("auto", "cpu", "cuda")


class LesionSegmentationParameters(ParameterNode):
    """CT, device, the lesion segmentation being corrected, and where corrections are saved."""

    module_name = "CovidCTLesionSegmentation"
    inputVolume = NodeReference("vtkMRMLScalarVolumeNode")
    device = Choice("auto", DEVICES)
    segmentation = NodeReference("vtkMRMLSegmentationNode")
    datasetFolder = String("")
    caseId = String("")
