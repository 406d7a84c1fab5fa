"""COVID-19 CT Classifiers: run one published classifier on a chest CT and inspect its explanation heatmap.

Slicer-only GUI wiring; each classifier is a logic class in CovidCTClassifiersLib.ClassifierLogic (no Qt).
"""

import sys
from pathlib import Path

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

try:
    import CovidCTAnalysis  # noqa: F401 - installed extension: the package lies next to the module scripts
except ImportError:  # a source checkout added through "Additional module paths": the package is three folders up
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from CovidCTAnalysis.mrml import heatmaps
from CovidCTClassifiersLib.ClassifierLogic import CLASSIFIER_LOGICS
from CovidCTClassifiersLib.Parameters import DEVICES, ClassifierParameters

POLL_INTERVAL_MS = 200


class CovidCTClassifiers(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID-19 CT Classifiers"
        self.parent.categories = ["Chest Imaging Platform.COVID-19 CT"]
        self.parent.dependencies = ["CovidCTAnalyze"]
        self.parent.contributors = ["CovidCTAnalysis developers"]
        self.parent.helpText = (
            "Run one of the published COVID-19 CT classifiers (slice-resnet, decovnet, da-cmil, lobe-patch, "
            "cvae-netvlad) and show P(COVID-19), its label and its explanation heatmap over the CT. Classifiers this "
            "version does not ship are listed but disabled. Research use only. See docs/SLICER.md."
        )
        self.parent.acknowledgementText = "CovidCTAnalysis: an open-source COVID-19 chest-CT toolkit for research."


class CovidCTClassifiersLogic(ScriptedLoadableModuleLogic):
    """One logic object per classifier, created on first use."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._logics = {}

    def classifier(self, model):
        if model not in self._logics:
            self._logics[model] = CLASSIFIER_LOGICS[model](slicer.mrmlScene)
        return self._logics[model]


class CovidCTClassifiersWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.parameters = None
        self._updating = False
        self._running = None
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CovidCTClassifiers.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CovidCTClassifiersLogic()

        model = self.ui.classifierComboBox.model()
        for row, (name, cls) in enumerate(CLASSIFIER_LOGICS.items()):
            self.ui.classifierComboBox.addItem(f"{name} (seed {cls.seed})", name)
            if not cls.available():
                model.item(row).setEnabled(False)
                model.item(row).setToolTip("not available in this version")

        self.ui.inputVolumeSelector.currentNodeChanged.connect(self.onGuiChanged)
        self.ui.classifierComboBox.currentIndexChanged.connect(self.onGuiChanged)
        self.ui.deviceComboBox.currentIndexChanged.connect(self.onGuiChanged)
        self.ui.heatmapCheckBox.toggled.connect(self.onHeatmapToggled)
        self.ui.opacitySliderWidget.valueChanged.connect(self.onOpacityChanged)
        self.ui.thresholdSliderWidget.valueChanged.connect(self.onThresholdChanged)
        self.ui.runButton.clicked.connect(self.onRunClicked)
        self.timer.timeout.connect(self.onTimer)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self):
        self.timer.stop()
        if self._running is not None:
            self._running.cancel()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def onSceneStartClose(self, caller, event):
        self.timer.stop()
        if self._running is not None:
            self._running.cancel()
        for logic in self.logic._logics.values():
            logic.heatmap, logic.result = None, None

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        if self.parameters is not None:
            self.removeObserver(self.parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameters)
        self.parameters = ClassifierParameters.of(slicer.mrmlScene)
        if self.parameters.inputVolume is None:
            self.parameters.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        if not self.parameters.classifier:
            available = [name for name, cls in CLASSIFIER_LOGICS.items() if cls.available()]
            self.parameters.classifier = (available or list(CLASSIFIER_LOGICS))[0]
        self.addObserver(self.parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameters)
        self.updateGuiFromParameters()

    def current(self):
        return self.logic.classifier(self.parameters.classifier)

    def updateGuiFromParameters(self, caller=None, event=None):
        if self.parameters is None or self._updating:
            return
        self._updating = True
        try:
            p = self.parameters
            self.ui.inputVolumeSelector.setCurrentNode(p.inputVolume)
            self.ui.classifierComboBox.currentIndex = max(self.ui.classifierComboBox.findData(p.classifier), 0)
            self.ui.classifierDescriptionLabel.text = CLASSIFIER_LOGICS[p.classifier].description()
            self.ui.deviceComboBox.currentIndex = DEVICES.index(p.device)
            self.ui.heatmapCheckBox.checked = p.showHeatmap
            self.ui.opacitySliderWidget.value = p.heatmapOpacity
            self.ui.thresholdSliderWidget.value = p.heatmapThreshold
            self._updateButtons()
        finally:
            self._updating = False

    def onGuiChanged(self, *args):
        if self.parameters is None or self._updating:
            return
        self._updating = True
        try:
            p = self.parameters
            p.inputVolume = self.ui.inputVolumeSelector.currentNode()
            p.classifier = self.ui.classifierComboBox.currentData
            p.device = DEVICES[max(self.ui.deviceComboBox.currentIndex, 0)]
        finally:
            self._updating = False
        self.updateGuiFromParameters()
        self._showResult()

    def _updateButtons(self):
        running = self._running is not None and self._running.running
        self.ui.runButton.text = "Cancel" if running else "Classify"
        available = CLASSIFIER_LOGICS[self.parameters.classifier].available()
        self.ui.runButton.enabled = running or (available and self.parameters.inputVolume is not None)
        self.ui.inputsCollapsibleButton.enabled = not running

    def onRunClicked(self):
        if self._running is not None and self._running.running:
            self._running.cancel()
            self.onTimer()
            return
        from CovidCTAnalyzeLib.Dependencies import ensure_dependencies

        if not ensure_dependencies(need_torch=True):
            return
        logic = self.current()
        try:
            logic.start(self.parameters)
        except Exception as exc:  # noqa: BLE001 - bad input or settings: one message for the user
            slicer.util.errorDisplay(str(exc))
            return
        self._running = logic
        self.ui.progressBar.value = 0
        self.timer.start()
        self._updateButtons()

    def onTimer(self):
        logic = self._running
        logic.poll()
        self.ui.progressBar.value = int(round(100 * logic.progress))
        if logic.stage_title:
            self.ui.statusLabel.text = f"{logic.stage_title}: {logic.stage_message}"
        if logic.running:
            return
        self.timer.stop()
        state = logic.state.value
        if state == "succeeded":
            self.ui.statusLabel.text = "Done."
        elif state == "failed":
            self.ui.statusLabel.text = "Failed: " + logic.error_message
            slicer.util.errorDisplay(f"{logic.model} failed: {logic.error_message}")
        else:
            self.ui.statusLabel.text = "Cancelled."
            self.ui.progressBar.value = 0
        self._updateButtons()
        self._showResult()

    def _showResult(self):
        logic = self.current()
        rows = dict(logic.result_rows())
        self.ui.probabilityValueLabel.text = rows.get("P(COVID-19)", "")
        self.ui.decisionValueLabel.text = rows.get("Label", "")
        self.ui.heatmapCheckBox.enabled = logic.heatmap is not None

    def onHeatmapToggled(self, checked):
        if self._updating:
            return
        self.parameters.showHeatmap = checked
        heatmap = self.current().heatmap
        if heatmap is not None:
            if checked:
                heatmaps.show_heatmap(slicer.mrmlScene, heatmap, self.parameters.inputVolume)
            else:
                heatmaps.hide_heatmap(slicer.mrmlScene, heatmap)

    def onOpacityChanged(self, value):
        if self._updating:
            return
        self.parameters.heatmapOpacity = value
        if self.current().heatmap is not None:
            heatmaps.set_heatmap_opacity(self.current().heatmap, value)

    def onThresholdChanged(self, value):
        if self._updating:
            return
        self.parameters.heatmapThreshold = value
        if self.current().heatmap is not None:
            heatmaps.set_threshold(self.current().heatmap, value)


class CovidCTClassifiersTest(ScriptedLoadableModuleTest):
    """Slicer self-test: every seed system has a logic class, and unavailable ones refuse to run clearly."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_logic_per_seed()

    def test_logic_per_seed(self):
        self.assertEqual(sorted(cls.seed for cls in CLASSIFIER_LOGICS.values()), ["000", "001", "002", "003", "004"])
        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        parameters = ClassifierParameters.of(slicer.mrmlScene)
        parameters.inputVolume = volume
        for name, cls in CLASSIFIER_LOGICS.items():
            if not cls.available():
                with self.assertRaises(ValueError):
                    cls(slicer.mrmlScene).start(parameters)
        self.delayDisplay("Test passed")
