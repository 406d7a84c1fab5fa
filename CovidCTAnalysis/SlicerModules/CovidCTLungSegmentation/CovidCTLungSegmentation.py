"""COVID-19 CT Lung Segmentation: the right and left lung of a chest CT (patient's right/left) as a segmentation
with standard terminology on the CT's grid, and the lung volumes in mL.

Panel only: LungSegmentationLogic does the work, CovidCTAnalyzeLib/ModuleWidget.py the shared GUI.
"""

import slicer
# first: ModuleWidget puts the package CovidCTAnalysis on the path in a source checkout
from CovidCTAnalyzeLib.ModuleWidget import CovidCTModule, CovidCTModuleTest, CovidCTModuleWidget
from CovidCTLungSegmentationLib.LungSegmentationLogic import LungSegmentationLogic, available_models
from CovidCTLungSegmentationLib.Parameters import LungSegmentationParameters


class CovidCTLungSegmentation(CovidCTModule):
    title = "COVID-19 CT Lung Segmentation"


class CovidCTLungSegmentationWidget(CovidCTModuleWidget):
    bindings = CovidCTModuleWidget.bindings + (("model", "modelComboBox", "itemText"),
                                               ("show3D", "show3DCheckBox", "checked"))
    parametersClass = LungSegmentationParameters
    runButtonName, runButtonText = "segmentButton", "Segment lungs"

    def setupWidgets(self):
        for model in available_models():
            self.ui.modelComboBox.addItem(model)

    def createLogic(self):
        return LungSegmentationLogic(slicer.mrmlScene)

    def forgetResults(self):
        self.logic.segmentation = None

    def onRunClicked(self):
        if not self.cancelIfRunning():
            needTorch = self.parameters.model not in ("", "lungs-classic")
            self.runJob(self.logic, lambda: self.logic.start(self.parameters), needTorch, "Segmenting the lungs...",
                        busy=True)

    def showOutcome(self):
        labels = (self.ui.rightLungValueLabel, self.ui.leftLungValueLabel, self.ui.bothLungsValueLabel)
        for label, name in zip(labels, ("right lung", "left lung", "both lungs")):
            label.text = f"{self.logic.volumes_ml[name]:.0f} mL"


class CovidCTLungSegmentationTest(CovidCTModuleTest):
    """Slicer self-test: segment the lungs of a generated demo CT and check both segments and their volumes."""

    tests = ("test_lungs_of_demo_ct",)

    def test_lungs_of_demo_ct(self):
        self.delayDisplay("Segmenting the lungs of a demo CT")
        parameters = LungSegmentationParameters.of(slicer.mrmlScene)
        parameters.inputVolume = self.loadDemoCT()[0]
        logic = LungSegmentationLogic(slicer.mrmlScene)
        logic.start(parameters)
        self.waitFor(logic)
        self.assertGreater(logic.volumes_ml["right lung"], 0)
        self.assertGreater(logic.volumes_ml["left lung"], 0)
