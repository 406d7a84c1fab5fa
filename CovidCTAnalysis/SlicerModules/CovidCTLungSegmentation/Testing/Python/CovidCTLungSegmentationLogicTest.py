"""Lung segmentation logic inside 3D Slicer: the demo CT's lungs, volumes close to the demo's truth.

Run by ctest (Testing/Python/CMakeLists.txt) or from Slicer's Python console:
``import CovidCTLungSegmentationLogicTest; CovidCTLungSegmentationLogicTest.runTests()``.
"""

import tempfile
import time
import unittest
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer
from CovidCTAnalyzeLib.Dependencies import missing_packages
from CovidCTLungSegmentationLib.LungSegmentationLogic import LungSegmentationLogic
from CovidCTLungSegmentationLib.Parameters import LungSegmentationParameters


class CovidCTLungSegmentationLogicTest(unittest.TestCase):
    def setUp(self):
        missing = missing_packages(need_torch=False)  # a build machine's Slicer has none of them
        if missing:
            self.skipTest("Python packages not installed: " + ", ".join(missing))
        slicer.mrmlScene.Clear()

    def test_demo_lungs(self):
        from CovidCTAnalysis.demo import make_demo_ct, write_demo_case

        case = make_demo_ct(size=(96, 96, 48), seed=0)
        volume = slicer.util.loadVolume(str(write_demo_case(case, Path(tempfile.mkdtemp()))))
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
        truth = sitk.GetArrayFromImage(case.lungs)
        voxel_ml = float(np.prod(case.image.GetSpacing())) / 1000.0
        for label, name in ((1, "right lung"), (2, "left lung")):
            expected = (truth == label).sum() * voxel_ml
            self.assertAlmostEqual(logic.volumes_ml[name], expected, delta=0.25 * expected)


def runTests():
    suite = unittest.TestLoader().loadTestsFromTestCase(CovidCTLungSegmentationLogicTest)
    return unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
