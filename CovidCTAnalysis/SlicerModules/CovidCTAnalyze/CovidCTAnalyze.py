"""COVID-19 CT Analyze: the radiologist's module. Select a chest CT, click Analyze, read the results: lung
segmentation (right/left volumes), lesion segmentation (ground-glass opacity, consolidation, crazy paving), COVID-19
classifiers with their heatmaps, shown as segmentations, heatmap overlays, 3-D lesion surfaces, a point list of
lesions and a table of measurements.

The panel over CovidCTAnalyzeLib (AnalyzeLogic, no Qt; ModuleWidget: what every module panel shares).
"""

import ctk
import qt
import slicer
# first: ModuleWidget puts the package CovidCTAnalysis on the path in a source checkout
from CovidCTAnalyzeLib.ModuleWidget import CovidCTModule, CovidCTModuleTest, CovidCTModuleWidget
from CovidCTAnalyzeLib.AnalyzeLogic import AnalyzeLogic, available_classifiers
from CovidCTAnalyzeLib.Parameters import AnalyzeParameters


class CovidCTAnalyze(CovidCTModule):
    title = "COVID-19 CT Analyze"


class CovidCTAnalyzeWidget(CovidCTModuleWidget):
    parametersClass = AnalyzeParameters
    runButtonName, runButtonText = "analyzeButton", "Analyze"
    bindings = CovidCTModuleWidget.bindings + (("outputFolder", "outputFolderPathLineEdit", "path"),
                                               ("show3D", "show3DCheckBox", "checked"),
                                               ("heatmapThreshold", "thresholdSliderWidget", "value"))

    def __init__(self, parent=None):
        CovidCTModuleWidget.__init__(self, parent)
        self._heatmapRows = []

    def createLogic(self):
        return AnalyzeLogic(slicer.mrmlScene, app_logic=slicer.app.applicationLogic())

    def setupWidgets(self):
        from CovidCTAnalysis.models.registry import CONTRACT_MODELS

        available = available_classifiers()
        for name in (n for n, task in CONTRACT_MODELS.items() if task == "classification"):
            item = qt.QListWidgetItem(name)
            item.setFlags(qt.Qt.ItemIsUserCheckable | qt.Qt.ItemIsEnabled if name in available else qt.Qt.NoItemFlags)
            item.setCheckState(qt.Qt.Checked if name in available else qt.Qt.Unchecked)
            item.setToolTip("" if name in available else "not available in this version")
            self.ui.classifiersListWidget.addItem(item)
        self.ui.classifiersListWidget.itemChanged.connect(self.onGuiChanged)
        self.ui.resultsTableWidget.horizontalHeader().setStretchLastSection(True)
        self.ui.resultsCollapsibleButton.collapsed = True
        self.ui.demoButton.clicked.connect(self.onDemoClicked)

    def _classifierItems(self):
        items = (self.ui.classifiersListWidget.item(row) for row in range(self.ui.classifiersListWidget.count))
        return [item for item in items if item.flags() & qt.Qt.ItemIsEnabled]

    def updateGui(self, parameters):
        for item in self._classifierItems():
            checked = not parameters.classifiers or item.text() in parameters.classifiers
            item.setCheckState(qt.Qt.Checked if checked else qt.Qt.Unchecked)

    def updateParameters(self, parameters):
        parameters.classifiers = [i.text() for i in self._classifierItems() if i.checkState() == qt.Qt.Checked]

    def parametersEdited(self):
        self.logic.set_heatmap_threshold(self.parameters.heatmapThreshold)

    def updateOtherButtons(self, running):
        self.ui.demoButton.enabled = not running

    def forgetResults(self):
        self.logic.results = None  # the scene removes the nodes
        self._showResults()

    # -- running --------------------------------------------------------------------------------------------------
    def onRunClicked(self):
        if not self.cancelIfRunning():
            self.runJob(self.logic, lambda: self.logic.start(self.parameters), True, "Starting...")

    def onDemoClicked(self):
        self.runJob(self.logic, lambda: self.logic.start_demo(self.parameters), True, "Starting...")

    def showOutcome(self):
        self._showResults()
        request = self.logic.view_request
        if request is not None:  # what MRML alone cannot do: the views' own fit and camera reset
            slicer.util.setSliceViewerLayers(background=request.background, foreground=request.foreground,
                                             foregroundOpacity=request.foreground_opacity, fit=True)
            if request.lesion_ras is not None:  # the fit re-centred the views: through the largest lesion again
                slicer.vtkMRMLSliceNode.JumpAllSlices(slicer.mrmlScene, *request.lesion_ras,
                                                      slicer.vtkMRMLSliceNode.OffsetJumpSlice)
            slicer.util.resetThreeDViews()

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


class CovidCTAnalyzeTest(CovidCTModuleTest):
    """Slicer self-test: analyze a small demo CT in the background and check the scene content."""

    needsTorch = True  # lesions-unet and the classifiers run on PyTorch
    tests = ("test_demo_analysis_populates_scene",)

    def test_demo_analysis_populates_scene(self):
        self.delayDisplay("Analyzing a small demo CT in the background")
        logic = AnalyzeLogic(slicer.mrmlScene, demo_size=(96, 96, 48), app_logic=slicer.app.applicationLogic())
        logic.start_demo(AnalyzeParameters.of(slicer.mrmlScene))
        self.waitFor(logic)
        segmentation = logic.results.lungs.GetSegmentation()
        names = {segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())}
        self.assertEqual(names, {"right lung", "left lung"})
        self.assertGreater(logic.results.table.GetNumberOfRows(), 2)
