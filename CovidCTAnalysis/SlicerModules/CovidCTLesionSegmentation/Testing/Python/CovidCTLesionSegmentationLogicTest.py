"""Lesion segmentation logic inside 3D Slicer: import the demo CT's lesion truth as a mask, save it as training data.

Run by ctest (Testing/Python/CMakeLists.txt) or from Slicer's Python console:
``import CovidCTLesionSegmentationLogicTest; CovidCTLesionSegmentationLogicTest.runTests()``.
"""

import tempfile
import unittest
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer
from CovidCTAnalyzeLib.Dependencies import missing_packages
from CovidCTLesionSegmentationLib.LesionSegmentationLogic import LesionSegmentationLogic
from CovidCTLesionSegmentationLib.Parameters import LesionSegmentationParameters


class CovidCTLesionSegmentationLogicTest(unittest.TestCase):
    def setUp(self):
        missing = missing_packages(need_torch=False)  # a build machine's Slicer has none of them
        if missing:
            self.skipTest("Python packages not installed: " + ", ".join(missing))
        slicer.mrmlScene.Clear()

    def test_import_edit_save(self):
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
        editor = logic.prepare_segment_editor(parameters)
        self.assertEqual(editor.GetSourceVolumeNode(), volume)
        parameters.datasetFolder = str(folder / "dataset")
        parameters.caseId = "demo0"
        image, label = logic.save_correction(parameters)
        saved = sitk.GetArrayFromImage(sitk.ReadImage(str(label)))
        np.testing.assert_array_equal(saved, sitk.GetArrayFromImage(case.lesions))
        self.assertEqual(image, folder / "dataset" / "images" / "demo0.nii.gz")
        self.assertEqual(label, folder / "dataset" / "masks" / "demo0.nii.gz")


def runTests():
    suite = unittest.TestLoader().loadTestsFromTestCase(CovidCTLesionSegmentationLogicTest)
    return unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
