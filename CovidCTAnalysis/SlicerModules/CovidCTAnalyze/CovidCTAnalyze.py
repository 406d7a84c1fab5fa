"""COVID-19 CT Analyze: the radiologist's module. Select a chest CT, click Analyze, read the results.

This file is Slicer-only GUI wiring: the work is done by CovidCTAnalyzeLib.AnalyzeLogic (no Qt) and the Qt-free
package CovidCTAnalysis (pipeline and MRML adapter).
"""

import sys
from pathlib import Path

import ctk
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

from CovidCTAnalyzeLib.AnalyzeLogic import AnalyzeLogic, available_classifiers
from CovidCTAnalyzeLib.Parameters import DEVICES, AnalyzeParameters

POLL_INTERVAL_MS = 200


class CovidCTAnalyze(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID-19 CT Analyze"
        self.parent.categories = ["Chest Imaging Platform.COVID-19 CT"]
        self.parent.dependencies = []
        self.parent.contributors = ["CovidCTAnalysis developers"]
        self.parent.helpText = (
            "Analyze a chest CT: lung segmentation (right/left volumes), lesion segmentation (ground-glass opacity, "
            "consolidation, crazy paving), COVID-19 classifiers with their heatmaps. Results appear as segmentations, "
            "heatmap overlays, 3-D lesion surfaces, a point list of lesions and a table of measurements. "
            "Research use only; not for diagnosis. See docs/SLICER.md."
        )
        self.parent.acknowledgementText = "CovidCTAnalysis: an open-source COVID-19 chest-CT toolkit for research."


class CovidCTAnalyzeLogic(ScriptedLoadableModuleLogic):
    """Slicer's logic object for this module: the Qt-free AnalyzeLogic on the application's scene."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.analysis = AnalyzeLogic(slicer.mrmlScene)


class CovidCTAnalyzeWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.parameters = None
        self._updating = False
        self._heatmapRows = []
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)

    # -- set-up ---------------------------------------------------------------------------------------------------
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CovidCTAnalyze.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CovidCTAnalyzeLogic().analysis

        self._fillClassifierList()
        self.ui.resultsTableWidget.horizontalHeader().setStretchLastSection(True)
        self.ui.resultsCollapsibleButton.collapsed = True

        self.ui.inputVolumeSelector.currentNodeChanged.connect(self.onGuiChanged)
        self.ui.deviceComboBox.currentIndexChanged.connect(self.onGuiChanged)
        self.ui.classifiersListWidget.itemChanged.connect(self.onGuiChanged)
        self.ui.outputFolderPathLineEdit.currentPathChanged.connect(self.onGuiChanged)
        self.ui.show3DCheckBox.toggled.connect(self.onGuiChanged)
        self.ui.thresholdSliderWidget.valueChanged.connect(self.onThresholdChanged)
        self.ui.analyzeButton.clicked.connect(self.onAnalyzeClicked)
        self.ui.demoButton.clicked.connect(self.onDemoClicked)
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
        self.logic.results = None  # the scene removes the nodes
        self._showResults()

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        if self.parameters is not None:
            self.removeObserver(self.parameters.node, vtk_modified_event(), self.updateGuiFromParameters)
        self.parameters = AnalyzeParameters.of(slicer.mrmlScene)
        if self.parameters.inputVolume is None:
            self.parameters.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        self.addObserver(self.parameters.node, vtk_modified_event(), self.updateGuiFromParameters)
        self.updateGuiFromParameters()

    def _fillClassifierList(self):
        from CovidCTAnalysis.models.registry import CONTRACT_MODELS

        available = available_classifiers()
        for name, task in CONTRACT_MODELS.items():
            if task != "classification":
                continue
            item = qt.QListWidgetItem(name)
            if name in available:
                item.setFlags(qt.Qt.ItemIsUserCheckable | qt.Qt.ItemIsEnabled)
                item.setCheckState(qt.Qt.Checked)
            else:
                item.setFlags(qt.Qt.NoItemFlags)
                item.setToolTip("not available in this version")
            self.ui.classifiersListWidget.addItem(item)

    # -- parameters <-> GUI ---------------------------------------------------------------------------------------
    def updateGuiFromParameters(self, caller=None, event=None):
        if self.parameters is None or self._updating:
            return
        self._updating = True
        try:
            p = self.parameters
            self.ui.inputVolumeSelector.setCurrentNode(p.inputVolume)
            self.ui.deviceComboBox.currentIndex = DEVICES.index(p.device)
            for row in range(self.ui.classifiersListWidget.count):
                item = self.ui.classifiersListWidget.item(row)
                if item.flags() & qt.Qt.ItemIsEnabled:
                    checked = not p.classifiers or item.text() in p.classifiers
                    item.setCheckState(qt.Qt.Checked if checked else qt.Qt.Unchecked)
            self.ui.outputFolderPathLineEdit.currentPath = p.outputFolder
            self.ui.show3DCheckBox.checked = p.show3D
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
            p.device = DEVICES[max(self.ui.deviceComboBox.currentIndex, 0)]
            checked = [self.ui.classifiersListWidget.item(r).text() for r in range(self.ui.classifiersListWidget.count)
                       if self.ui.classifiersListWidget.item(r).checkState() == qt.Qt.Checked]
            p.classifiers = checked
            p.outputFolder = self.ui.outputFolderPathLineEdit.currentPath
            p.show3D = self.ui.show3DCheckBox.checked
        finally:
            self._updating = False
        self._updateButtons()

    def _updateButtons(self):
        running = self.logic.running
        self.ui.analyzeButton.text = "Cancel" if running else "Analyze"
        self.ui.analyzeButton.enabled = running or self.parameters.inputVolume is not None
        self.ui.demoButton.enabled = not running
        self.ui.inputsCollapsibleButton.enabled = not running

    # -- running --------------------------------------------------------------------------------------------------
    def onAnalyzeClicked(self):
        if self.logic.running:
            self.logic.cancel()
            self.onTimer()
            return
        self._start(demo=False)

    def onDemoClicked(self):
        self._start(demo=True)

    def _start(self, demo):
        from CovidCTAnalyzeLib.Dependencies import ensure_dependencies

        if not ensure_dependencies(need_torch=bool(available_classifiers())):
            return
        try:
            if demo:
                self.logic.start_demo(self.parameters)
            else:
                self.logic.start(self.parameters)
        except Exception as exc:  # noqa: BLE001 - bad input or settings: one message for the user
            slicer.util.errorDisplay(str(exc))
            return
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = "Starting..."
        self.timer.start()
        self._updateButtons()

    def onTimer(self):
        self.logic.poll()
        self.ui.progressBar.value = int(round(100 * self.logic.progress))
        if self.logic.stage_title:
            self.ui.statusLabel.text = f"{self.logic.stage_title}: {self.logic.stage_message}"
        if self.logic.running:
            return
        self.timer.stop()
        state = self.logic.state.value
        if state == "succeeded":
            self.ui.statusLabel.text = "Done."
            self._showResults()
        elif state == "failed":
            self.ui.statusLabel.text = "Failed: " + self.logic.error_message
            slicer.util.errorDisplay("The analysis failed: " + self.logic.error_message)
        elif state == "cancelled":
            self.ui.statusLabel.text = "Cancelled."
            self.ui.progressBar.value = 0
        self._updateButtons()

    # -- results --------------------------------------------------------------------------------------------------
    def _showResults(self):
        table = self.ui.resultsTableWidget
        rows = self.logic.result_rows()
        table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            value = "" if row.value != row.value else f"{row.value:.3g} {row.unit}".strip()  # NaN: no number
            for column, text in enumerate((row.measurement, value, row.note)):
                table.setItem(index, column, qt.QTableWidgetItem(text))
        table.resizeColumnsToContents()
        self._buildHeatmapRows()
        self.ui.resultsCollapsibleButton.collapsed = not rows

    def _buildHeatmapRows(self):
        layout = self.ui.heatmapsLayout
        for widgets in self._heatmapRows:
            for widget in widgets:
                layout.removeWidget(widget)
                widget.deleteLater()
        self._heatmapRows = []
        for row, model in enumerate(self.logic.heatmap_models()):
            checkBox = qt.QCheckBox(model)
            checkBox.checked = self.logic.heatmap_visible(model)
            checkBox.toggled.connect(lambda visible, m=model: self.logic.set_heatmap_visible(m, visible))
            slider = ctk.ctkSliderWidget()
            slider.minimum, slider.maximum, slider.singleStep = 0.0, 1.0, 0.05
            slider.value = self.logic.heatmap_opacity(model)
            slider.toolTip = f"Opacity of the {model} heatmap over the CT"
            slider.valueChanged.connect(lambda value, m=model: self.logic.set_heatmap_opacity(m, value))
            layout.addWidget(checkBox, row, 0)
            layout.addWidget(slider, row, 1)
            self._heatmapRows.append((checkBox, slider))
        self.ui.heatmapsLabel.visible = bool(self._heatmapRows)

    def onThresholdChanged(self, value):
        if self.parameters is not None and not self._updating:
            self.parameters.heatmapThreshold = value
            self.logic.set_heatmap_threshold(value)


def vtk_modified_event():
    return vtk.vtkCommand.ModifiedEvent


class CovidCTAnalyzeTest(ScriptedLoadableModuleTest):
    """Slicer self-test: analyze a small demo CT in the background and check the scene content."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_demo_analysis_populates_scene()

    def test_demo_analysis_populates_scene(self):
        import time

        self.delayDisplay("Analyzing a small demo CT in the background")
        logic = AnalyzeLogic(slicer.mrmlScene, demo_size=(96, 96, 48))
        parameters = AnalyzeParameters.of(slicer.mrmlScene)
        logic.start_demo(parameters)
        deadline = time.monotonic() + 600
        while logic.running and time.monotonic() < deadline:
            logic.poll()
            slicer.app.processEvents()
            time.sleep(0.1)
        self.assertEqual(logic.state.value, "succeeded", logic.error_message)
        results = logic.results
        self.assertIsNotNone(results.lungs)
        names = {results.lungs.GetSegmentation().GetNthSegment(i).GetName()
                 for i in range(results.lungs.GetSegmentation().GetNumberOfSegments())}
        self.assertEqual(names, {"right lung", "left lung"})
        self.assertGreater(results.table.GetNumberOfRows(), 2)
        self.delayDisplay("Test passed")
