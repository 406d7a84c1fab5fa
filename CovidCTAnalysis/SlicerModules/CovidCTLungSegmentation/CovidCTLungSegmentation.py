"""COVID-19 CT Lung Segmentation: right and left lung of a chest CT, as segments, with their volumes.

Slicer-only GUI wiring; the work is in CovidCTLungSegmentationLib.LungSegmentationLogic (no Qt).
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

from CovidCTLungSegmentationLib.LungSegmentationLogic import LungSegmentationLogic, available_models
from CovidCTLungSegmentationLib.Parameters import DEVICES, LungSegmentationParameters

POLL_INTERVAL_MS = 200


class CovidCTLungSegmentation(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID-19 CT Lung Segmentation"
        self.parent.categories = ["Chest Imaging Platform.COVID-19 CT"]
        self.parent.dependencies = ["CovidCTAnalyze"]
        self.parent.contributors = ["CovidCTAnalysis developers"]
        self.parent.helpText = (
            "Segment the right and left lung of a chest CT (patient's right/left). The result is a segmentation with "
            "standard terminology on the CT's grid, and the lung volumes in mL. Research use only. See docs/SLICER.md."
        )
        self.parent.acknowledgementText = "CovidCTAnalysis: an open-source COVID-19 chest-CT toolkit for research."


class CovidCTLungSegmentationLogic(ScriptedLoadableModuleLogic):
    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.segmenter = LungSegmentationLogic(slicer.mrmlScene)


class CovidCTLungSegmentationWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.parameters = None
        self._updating = False
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CovidCTLungSegmentation.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CovidCTLungSegmentationLogic().segmenter

        for model in available_models():
            self.ui.modelComboBox.addItem(model)
        self.ui.inputVolumeSelector.currentNodeChanged.connect(self.onGuiChanged)
        self.ui.modelComboBox.currentIndexChanged.connect(self.onGuiChanged)
        self.ui.deviceComboBox.currentIndexChanged.connect(self.onGuiChanged)
        self.ui.show3DCheckBox.toggled.connect(self.onGuiChanged)
        self.ui.segmentButton.clicked.connect(self.onSegmentClicked)
        self.timer.timeout.connect(self.onTimer)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self):
        self.timer.stop()
        if self.logic is not None:
            self.logic.cancel()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def onSceneStartClose(self, caller, event):
        self.timer.stop()
        self.logic.cancel()
        self.logic.segmentation = None

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        if self.parameters is not None:
            self.removeObserver(self.parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameters)
        self.parameters = LungSegmentationParameters.of(slicer.mrmlScene)
        if self.parameters.inputVolume is None:
            self.parameters.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        self.addObserver(self.parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameters)
        self.updateGuiFromParameters()

    def updateGuiFromParameters(self, caller=None, event=None):
        if self.parameters is None or self._updating:
            return
        self._updating = True
        try:
            p = self.parameters
            self.ui.inputVolumeSelector.setCurrentNode(p.inputVolume)
            index = self.ui.modelComboBox.findText(p.model)
            self.ui.modelComboBox.currentIndex = max(index, 0)
            self.ui.deviceComboBox.currentIndex = DEVICES.index(p.device)
            self.ui.show3DCheckBox.checked = p.show3D
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
            p.model = self.ui.modelComboBox.currentText
            p.device = DEVICES[max(self.ui.deviceComboBox.currentIndex, 0)]
            p.show3D = self.ui.show3DCheckBox.checked
        finally:
            self._updating = False
        self._updateButtons()

    def _updateButtons(self):
        running = self.logic.running
        self.ui.segmentButton.text = "Cancel" if running else "Segment lungs"
        self.ui.segmentButton.enabled = running or self.parameters.inputVolume is not None
        self.ui.inputsCollapsibleButton.enabled = not running

    def onSegmentClicked(self):
        if self.logic.running:
            self.logic.cancel()
            self.onTimer()
            return
        from CovidCTAnalyzeLib.Dependencies import ensure_dependencies

        if not ensure_dependencies(need_torch=self.parameters.model not in ("", "lungs-classic")):
            return
        try:
            self.logic.start(self.parameters)
        except Exception as exc:  # noqa: BLE001 - bad input or settings: one message for the user
            slicer.util.errorDisplay(str(exc))
            return
        self.ui.progressBar.setRange(0, 0)  # the lung command reports no stages: a busy bar
        self.ui.statusLabel.text = "Segmenting the lungs..."
        self.timer.start()
        self._updateButtons()

    def onTimer(self):
        self.logic.poll()
        if self.logic.running:
            return
        self.timer.stop()
        self.ui.progressBar.setRange(0, 100)
        state = self.logic.state.value
        if state == "succeeded":
            self.ui.progressBar.value = 100
            self.ui.statusLabel.text = "Done."
            volumes = self.logic.volumes_ml
            self.ui.rightLungValueLabel.text = f"{volumes['right lung']:.0f} mL"
            self.ui.leftLungValueLabel.text = f"{volumes['left lung']:.0f} mL"
            self.ui.bothLungsValueLabel.text = f"{volumes['both lungs']:.0f} mL"
        elif state == "failed":
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = "Failed: " + self.logic.error_message
            slicer.util.errorDisplay("Lung segmentation failed: " + self.logic.error_message)
        else:
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = "Cancelled."
        self._updateButtons()


class CovidCTLungSegmentationTest(ScriptedLoadableModuleTest):
    """Slicer self-test: segment the lungs of a generated demo CT and check both segments and their volumes."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_lungs_of_demo_ct()

    def test_lungs_of_demo_ct(self):
        import tempfile
        import time
        from pathlib import Path

        from CovidCTAnalysis.demo import make_demo_ct, write_demo_case

        self.delayDisplay("Segmenting the lungs of a demo CT")
        folder = Path(tempfile.mkdtemp())
        path = write_demo_case(make_demo_ct(size=(96, 96, 48), seed=0), folder)
        volume = slicer.util.loadVolume(str(path))
        parameters = LungSegmentationParameters.of(slicer.mrmlScene)
        parameters.inputVolume = volume
        logic = LungSegmentationLogic(slicer.mrmlScene)
        logic.start(parameters)
        deadline = time.monotonic() + 600
        while logic.running and time.monotonic() < deadline:
            logic.poll()
            slicer.app.processEvents()
            time.sleep(0.1)
        self.assertEqual(logic.state.value, "succeeded", logic.error_message)
        self.assertGreater(logic.volumes_ml["right lung"], 0)
        self.assertGreater(logic.volumes_ml["left lung"], 0)
        self.delayDisplay("Test passed")
