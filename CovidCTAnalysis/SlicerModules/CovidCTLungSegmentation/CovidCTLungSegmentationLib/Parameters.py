"""State of the lung segmentation module, kept in the scene's parameter node."""

from CovidCTAnalysis.mrml.parameters import Bool, Choice, NodeReference, ParameterNode, String

DEVICES = ("auto", "cpu", "cuda")


class LungSegmentationParameters(ParameterNode):
    """Input volume, lung model (empty: the best validated one the registry ships), device, 3-D display."""

    module_name = "CovidCTLungSegmentation"
    inputVolume = NodeReference("vtkMRMLScalarVolumeNode")
    model = String("")
    device = Choice("auto", DEVICES)
    show3D = Bool(False)
