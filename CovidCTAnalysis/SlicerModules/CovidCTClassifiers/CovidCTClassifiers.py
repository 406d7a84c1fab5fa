"""COVID-19 CT Classifiers: run one of the published COVID-19 CT classifiers (slice-resnet, decovnet, da-cmil,
lobe-patch, cvae-netvlad) and show P(COVID-19), its label and its explanation heatmap over the CT. Classifiers this
version does not ship are listed but disabled.

One logic class per classifier lives in CovidCTClassifiersLib.ClassifierLogic (no Qt).
"""

import slicer
# first: ModuleWidget puts the package CovidCTAnalysis on the path in a source checkout
from CovidCTAnalyzeLib.ModuleWidget import CovidCTModule, CovidCTModuleTest, CovidCTModuleWidget
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from CovidCTAnalysis.mrml import heatmaps
from CovidCTClassifiersLib.ClassifierLogic import CLASSIFIER_LOGICS
from CovidCTClassifiersLib.Parameters import ClassifierParameters


class CovidCTClassifiers(CovidCTModule):
    title = "COVID-19 CT Classifiers"


class CovidCTClassifiersLogic(ScriptedLoadableModuleLogic):
    """One logic object per classifier, created on first use."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._logics = {}

    def classifier(self, model):
        if model not in self._logics:
            self._logics[model] = CLASSIFIER_LOGICS[model](slicer.mrmlScene)
        return self._logics[model]


class CovidCTClassifiersWidget(CovidCTModuleWidget):
    parametersClass = ClassifierParameters
    bindings = CovidCTModuleWidget.bindings + (("classifier", "classifierComboBox", "itemData"),
                                               ("showHeatmap", "heatmapCheckBox", "checked"),
                                               ("heatmapOpacity", "opacitySliderWidget", "value"),
                                               ("heatmapThreshold", "thresholdSliderWidget", "value"))
    runButtonName, runButtonText = "runButton", "Classify"

    def createLogic(self):
        return CovidCTClassifiersLogic()

    def current(self):
        return self.logic.classifier(self.parameters.classifier)

    def setupWidgets(self):
        items = self.ui.classifierComboBox.model()
        for row, (name, cls) in enumerate(CLASSIFIER_LOGICS.items()):
            self.ui.classifierComboBox.addItem(f"{name} (seed {cls.seed})", name)
            if not cls.available():
                items.item(row).setEnabled(False)
                items.item(row).setToolTip("not available in this version")

    def initializeParameters(self, parameters):
        if not parameters.classifier:
            available = [name for name, cls in CLASSIFIER_LOGICS.items() if cls.available()]
            parameters.classifier = (available or list(CLASSIFIER_LOGICS))[0]

    def updateGui(self, parameters):
        self.ui.classifierDescriptionLabel.text = CLASSIFIER_LOGICS[parameters.classifier].description()

    def canRun(self):
        return CLASSIFIER_LOGICS[self.parameters.classifier].available() and self.parameters.inputVolume is not None

    def forgetResults(self):
        for logic in self.logic._logics.values():
            logic.heatmap, logic.result = None, None

    def failureTitle(self):
        return self.job.model

    def onRunClicked(self):
        if not self.cancelIfRunning():
            logic = self.current()
            self.runJob(logic, lambda: logic.start(self.parameters), True, "Starting...")

    def showOutcome(self):
        self.parametersEdited()

    def parametersEdited(self):
        """Show the selected classifier's result and its heatmap as the parameters say."""
        self.updateGuiFromParameters()
        logic, p = self.current(), self.parameters
        rows = dict(logic.result_rows())
        self.ui.probabilityValueLabel.text = rows.get("P(COVID-19)", "")
        self.ui.decisionValueLabel.text = rows.get("Label", "")
        self.ui.heatmapCheckBox.enabled = logic.heatmap is not None
        if logic.heatmap is not None:
            heatmaps.set_heatmap_opacity(logic.heatmap, p.heatmapOpacity)
            heatmaps.set_threshold(logic.heatmap, p.heatmapThreshold)
            if p.showHeatmap:
                heatmaps.show_heatmap(slicer.mrmlScene, logic.heatmap, p.inputVolume)
            else:
                heatmaps.hide_heatmap(slicer.mrmlScene, logic.heatmap)


class CovidCTClassifiersTest(CovidCTModuleTest):
    """Slicer self-test: every seed system has a logic class, and unavailable ones refuse to run clearly."""

    tests = ("test_logic_per_seed",)

    def test_logic_per_seed(self):
        self.assertEqual(sorted(cls.seed for cls in CLASSIFIER_LOGICS.values()), ["000", "001", "002", "003", "004"])
        parameters = ClassifierParameters.of(slicer.mrmlScene)
        parameters.inputVolume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        for cls in CLASSIFIER_LOGICS.values():
            if not cls.available():
                with self.assertRaises(ValueError):
                    cls(slicer.mrmlScene).start(parameters)
