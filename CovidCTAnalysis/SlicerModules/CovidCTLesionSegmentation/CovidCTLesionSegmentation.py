"""COVID-19 CT Lesion Segmentation: pseudo-masks of GGO / consolidation / crazy paving, correction, training data.

Slicer-only GUI wiring; the work is in CovidCTLesionSegmentationLib.LesionSegmentationLogic (no Qt).
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

from CovidCTLesionSegmentationLib.LesionSegmentationLogic import LesionSegmentationLogic, lesion_summary
from CovidCTLesionSegmentationLib.Parameters import DEVICES, LesionSegmentationParameters

POLL_INTERVAL_MS = 200


class CovidCTLesionSegmentation(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "COVID-19 CT Lesion Segmentation"
        self.parent.categories = ["Chest Imaging Platform.COVID-19 CT"]
        self.parent.dependencies = ["CovidCTAnalyze"]
        self.parent.contributors = ["CovidCTAnalysis developers"]
        self.parent.helpText = (
            "Generate a lesion pseudo-mask (ground-glass opacity, consolidation, crazy paving) or import one, correct "
            "it in Segment Editor, and save the CT with the corrected mask into a training dataset folder "
            "(images/, masks/) for scripts/train_lesions.py --corrected. Research use only. See docs/SLICER.md."
        )
        self.parent.acknowledgementText = "CovidCTAnalysis: an open-source COVID-19 chest-CT toolkit for research."


class CovidCTLesionSegmentationLogic(ScriptedLoadableModuleLogic):
    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.lesions = LesionSegmentationLogic(slicer.mrmlScene)


class CovidCTLesionSegmentationWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
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
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CovidCTLesionSegmentation.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CovidCTLesionSegmentationLogic().lesions

        self.ui.inputVolumeSelector.currentNodeChanged.connect(self.onGuiChanged)
        self.ui.deviceComboBox.currentIndexChanged.connect(self.onGuiChanged)
        self.ui.segmentationSelector.currentNodeChanged.connect(self.onGuiChanged)
        self.ui.datasetPathLineEdit.currentPathChanged.connect(self.onGuiChanged)
        self.ui.caseIdLineEdit.textChanged.connect(self.onGuiChanged)
        self.ui.generateButton.clicked.connect(self.onGenerateClicked)
        self.ui.importButton.clicked.connect(self.onImportClicked)
        self.ui.editButton.clicked.connect(self.onEditClicked)
        self.ui.saveButton.clicked.connect(self.onSaveClicked)
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
        self.logic.markups = None

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        if self.parameters is not None:
            self.removeObserver(self.parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameters)
        self.parameters = LesionSegmentationParameters.of(slicer.mrmlScene)
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
            self.ui.deviceComboBox.currentIndex = DEVICES.index(p.device)
            self.ui.segmentationSelector.setCurrentNode(p.segmentation)
            self.ui.datasetPathLineEdit.currentPath = p.datasetFolder
            if self.ui.caseIdLineEdit.text != p.caseId:
                self.ui.caseIdLineEdit.text = p.caseId
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
            p.segmentation = self.ui.segmentationSelector.currentNode()
            p.datasetFolder = self.ui.datasetPathLineEdit.currentPath
            p.caseId = self.ui.caseIdLineEdit.text.strip()
        finally:
            self._updating = False
        self._updateButtons()

    def _updateButtons(self):
        running = self.logic.running
        p = self.parameters
        self.ui.generateButton.text = "Cancel" if running else "Generate pseudo-mask"
        self.ui.generateButton.enabled = running or p.inputVolume is not None
        self.ui.importButton.enabled = not running and p.inputVolume is not None
        self.ui.inputsCollapsibleButton.enabled = not running
        haveMask = p.segmentation is not None and p.inputVolume is not None
        self.ui.editButton.enabled = haveMask and not running
        self.ui.saveButton.enabled = haveMask and bool(p.datasetFolder) and bool(p.caseId) and not running

    # -- pseudo-mask ----------------------------------------------------------------------------------------------
    def onGenerateClicked(self):
        if self.logic.running:
            self.logic.cancel()
            self.onTimer()
            return
        from CovidCTAnalyzeLib.Dependencies import ensure_dependencies

        if not ensure_dependencies(need_torch=True):
            return
        try:
            self.logic.start_pseudo_mask(self.parameters)
        except Exception as exc:  # noqa: BLE001 - bad input or settings: one message for the user
            slicer.util.errorDisplay(str(exc))
            return
        self.ui.progressBar.setRange(0, 0)  # the lesion command reports no stages: a busy bar
        self.ui.statusLabel.text = "Segmenting lesions..."
        self.timer.start()
        self._updateButtons()

    def onTimer(self):
        self.logic.poll()
        if self.logic.running:
            return
        self.timer.stop()
        self.ui.progressBar.setRange(0, 100)
        state = self.logic.state.value
        self.ui.progressBar.value = 100 if state == "succeeded" else 0
        if state == "succeeded":
            self.ui.statusLabel.text = "Done: correct the mask in Segment Editor, then save the correction."
            self._showSummary()
        elif state == "failed":
            self.ui.statusLabel.text = "Failed: " + self.logic.error_message
            slicer.util.errorDisplay("Lesion segmentation failed: " + self.logic.error_message)
        else:
            self.ui.statusLabel.text = "Cancelled."
        self._updateButtons()

    def onImportClicked(self):
        path = self.ui.importPathLineEdit.currentPath
        if not path:
            slicer.util.errorDisplay("Choose a mask file to import.")
            return
        try:
            self.logic.load_mask(self.parameters, path)
        except Exception as exc:  # noqa: BLE001 - one message for the user
            slicer.util.errorDisplay(f"The mask could not be imported: {exc}")
            return
        self._showSummary()

    def _showSummary(self):
        p = self.parameters
        if p.segmentation is None or p.inputVolume is None:
            self.ui.lesionSummaryLabel.text = ""
            return
        rows = lesion_summary(p.segmentation, p.inputVolume)
        self.ui.lesionSummaryLabel.text = "\n".join(
            f"{name}: {ml:.1f} mL in {count} lesion(s)" for name, ml, count in rows) or "no lesion"

    # -- correction -----------------------------------------------------------------------------------------------
    def onEditClicked(self):
        try:
            self.logic.prepare_segment_editor(self.parameters, editor_node=self._segmentEditorNode())
        except ValueError as exc:
            slicer.util.errorDisplay(str(exc))
            return
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(self.parameters.segmentation)
        if hasattr(editor, "setSourceVolumeNode"):
            editor.setSourceVolumeNode(self.parameters.inputVolume)
        else:  # Slicer < 5.2
            editor.setMasterVolumeNode(self.parameters.inputVolume)

    def _segmentEditorNode(self):
        widget = slicer.modules.segmenteditor.widgetRepresentation()
        return widget.self().editor.mrmlSegmentEditorNode() if widget is not None else None

    def onSaveClicked(self):
        try:
            image, label = self.logic.save_correction(self.parameters)
        except Exception as exc:  # noqa: BLE001 - one message for the user
            slicer.util.errorDisplay(f"The correction could not be saved: {exc}")
            return
        self._showSummary()
        self.ui.statusLabel.text = f"Saved {image.name} and its mask in {image.parent.parent}."


class CovidCTLesionSegmentationTest(ScriptedLoadableModuleTest):
    """Slicer self-test: import a lesion mask of the demo CT, open it for editing, save it as training data."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_import_and_save_correction()

    def test_import_and_save_correction(self):
        import tempfile
        from pathlib import Path

        from CovidCTAnalysis.demo import make_demo_ct, write_demo_case
        from CovidCTAnalysis.io import write_label_map
        from CovidCTAnalysis.labels import LESION_SEGMENTS

        folder = Path(tempfile.mkdtemp())
        case = make_demo_ct(size=(96, 96, 48), seed=0)
        volume = slicer.util.loadVolume(str(write_demo_case(case, folder)))
        write_label_map(case.lesions, folder / "lesions.seg.nrrd", LESION_SEGMENTS)
        parameters = LesionSegmentationParameters.of(slicer.mrmlScene)
        parameters.inputVolume = volume
        logic = LesionSegmentationLogic(slicer.mrmlScene)
        logic.load_mask(parameters, folder / "lesions.seg.nrrd")
        self.assertIsNotNone(logic.markups)
        editor = logic.prepare_segment_editor(parameters)
        self.assertEqual(editor.GetSegmentationNode(), parameters.segmentation)
        parameters.datasetFolder = str(folder / "dataset")
        parameters.caseId = "demo0"
        image, label = logic.save_correction(parameters)
        self.assertTrue(image.is_file() and label.is_file())
        self.assertEqual(label.parent.name, "masks")
        self.delayDisplay("Test passed")
