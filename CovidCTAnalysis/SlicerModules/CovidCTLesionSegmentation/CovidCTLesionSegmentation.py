"""COVID-19 CT Lesion Segmentation: generate a lesion pseudo-mask (ground-glass opacity, consolidation, crazy paving)
or import one, correct it in Segment Editor, and save the CT with the corrected mask into a training dataset folder
(images/, masks/) for scripts/train_lesions.py --corrected.

GUI wiring over LesionSegmentationLogic (no Qt) and the shared module widget of CovidCTAnalyzeLib.
"""

import slicer
# first: ModuleWidget puts the package CovidCTAnalysis on the path in a source checkout
from CovidCTAnalyzeLib.ModuleWidget import CovidCTModule, CovidCTModuleTest, CovidCTModuleWidget
from CovidCTLesionSegmentationLib.LesionSegmentationLogic import LesionSegmentationLogic, lesion_summary
from CovidCTLesionSegmentationLib.Parameters import LesionSegmentationParameters


class CovidCTLesionSegmentation(CovidCTModule):
    title = "COVID-19 CT Lesion Segmentation"


class CovidCTLesionSegmentationWidget(CovidCTModuleWidget):
    runButtonName, runButtonText = "generateButton", "Generate pseudo-mask"
    bindings = CovidCTModuleWidget.bindings + (("segmentation", "segmentationSelector", "node"),
                                               ("datasetFolder", "datasetPathLineEdit", "path"),
                                               ("caseId", "caseIdLineEdit", "text"))
    parametersClass = LesionSegmentationParameters

    def createLogic(self):
        return LesionSegmentationLogic(slicer.mrmlScene)

    def setupWidgets(self):
        self.ui.importButton.clicked.connect(self.onImportClicked)
        self.ui.editButton.clicked.connect(self.onEditClicked)
        self.ui.saveButton.clicked.connect(self.onSaveClicked)

    def forgetResults(self):
        self.logic.markups = None

    def updateOtherButtons(self, running):
        p = self.parameters
        self.ui.importButton.enabled = not running and p.inputVolume is not None
        haveMask = p.segmentation is not None and p.inputVolume is not None and not running
        self.ui.editButton.enabled = haveMask
        self.ui.saveButton.enabled = haveMask and bool(p.datasetFolder) and bool(p.caseId)

    # -- pseudo-mask ----------------------------------------------------------------------------------------------
    def onRunClicked(self):
        if not self.cancelIfRunning():
            self.runJob(self.logic, lambda: self.logic.start_pseudo_mask(self.parameters), True,
                        "Segmenting lesions...", busy=True)

    def showOutcome(self):
        self.ui.statusLabel.text = "Done: correct the mask in Segment Editor, then save the correction."
        self._showSummary()

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
        rows = lesion_summary(p.segmentation, p.inputVolume) if p.segmentation and p.inputVolume else None
        self.ui.lesionSummaryLabel.text = "" if rows is None else "\n".join(
            f"{name}: {ml:.1f} mL in {count} lesion(s)" for name, ml, count in rows) or "no lesion"

    # -- correction -----------------------------------------------------------------------------------------------
    def onEditClicked(self):
        widget = slicer.modules.segmenteditor.widgetRepresentation()
        try:
            self.logic.prepare_segment_editor(self.parameters, editor_node=widget.self().editor.mrmlSegmentEditorNode())
        except ValueError as exc:
            slicer.util.errorDisplay(str(exc))
            return
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(self.parameters.segmentation)
        editor.setSourceVolumeNode(self.parameters.inputVolume)

    def onSaveClicked(self):
        try:
            image, _ = self.logic.save_correction(self.parameters)
        except Exception as exc:  # noqa: BLE001 - one message for the user
            slicer.util.errorDisplay(f"The correction could not be saved: {exc}")
            return
        self._showSummary()
        self.ui.statusLabel.text = f"Saved {image.name} and its mask in {image.parent.parent}."


class CovidCTLesionSegmentationTest(CovidCTModuleTest):
    """Slicer self-test: import a lesion mask of the demo CT, open it for editing, save it as training data."""

    tests = ("test_import_and_save_correction",)

    def test_import_and_save_correction(self):
        from CovidCTAnalysis.io import write_label_map
        from CovidCTAnalysis.labels import LESION_SEGMENTS

        volume, case, folder = self.loadDemoCT()
        write_label_map(case.lesions, folder / "lesions.seg.nrrd", LESION_SEGMENTS)
        parameters = LesionSegmentationParameters.of(slicer.mrmlScene)
        parameters.inputVolume = volume
        logic = LesionSegmentationLogic(slicer.mrmlScene)
        logic.load_mask(parameters, folder / "lesions.seg.nrrd")
        self.assertIsNotNone(logic.markups)
        self.assertEqual(logic.prepare_segment_editor(parameters).GetSegmentationNode(), parameters.segmentation)
        parameters.datasetFolder, parameters.caseId = str(folder / "dataset"), "demo0"
        image, label = logic.save_correction(parameters)
        self.assertTrue(image.is_file() and label.is_file())
        self.assertEqual(label.parent.name, "masks")
