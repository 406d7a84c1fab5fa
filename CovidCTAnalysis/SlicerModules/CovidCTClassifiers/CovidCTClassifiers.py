"""COVID-19 CT Classifiers: run one of the published COVID-19 CT classifiers the package ships and show P(COVID-19),
its label and its explanation heatmap over the CT. The list comes from the classifier table and the model registry;
classifiers the project reserves but this version does not ship are listed but disabled.

The logic (no Qt) lives in CovidCTClassifiersLib.ClassifierLogic.
"""

import slicer
# first: ModuleWidget puts the package CovidCTAnalysis on the path in a source checkout
from CovidCTAnalyzeLib.ModuleWidget import CovidCTModule, CovidCTModuleTest, CovidCTModuleWidget
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from CovidCTAnalysis.mrml import heatmaps
from CovidCTClassifiersLib.ClassifierLogic import ClassifierLogic, classifier_choices
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
            self._logics[model] = ClassifierLogic(slicer.mrmlScene, model)
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
        for row, (name, info) in enumerate(classifier_choices()):
            self.ui.classifierComboBox.addItem(name if info is None else f"{name}: {info.title}", name)
            if info is None:
                items.item(row).setEnabled(False)
                items.item(row).setToolTip("not available in this version")

    def initializeParameters(self, parameters):
        if not parameters.classifier:
            parameters.classifier = classifier_choices()[0][0]

    def updateGui(self, parameters):
        self.ui.classifierDescriptionLabel.text = self.logic.classifier(parameters.classifier).description()

    def canRun(self):
        return self.current().available() and self.parameters.inputVolume is not None

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
        chart = self.current().attention_chart()
        if chart is not None:  # a multiple-instance classifier's attention per slice, in a plot view
            slicer.modules.plots.logic().ShowChartInLayout(chart)

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
    """Slicer self-test: every classifier name is listed, and unavailable ones refuse to run clearly."""

    tests = ("test_every_classifier_listed",)

    def test_every_classifier_listed(self):
        self.assertEqual(len(classifier_choices()), 5)
        parameters = ClassifierParameters.of(slicer.mrmlScene)
        parameters.inputVolume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        for name, info in classifier_choices():
            if info is None:
                with self.assertRaises(ValueError):
                    ClassifierLogic(slicer.mrmlScene, name).start(parameters)
