"""Analyze logic inside 3D Slicer: a demo analysis in the application's scene, then cancel of a second run.

Run by ctest (Testing/Python/CMakeLists.txt) or from Slicer's Python console:
``import CovidCTAnalyzeLogicTest; CovidCTAnalyzeLogicTest.runTests()``.
"""

import time
import unittest

import slicer
from CovidCTAnalyzeLib.Dependencies import missing_packages
from CovidCTAnalyzeLib.AnalyzeLogic import AnalyzeLogic
from CovidCTAnalyzeLib.Parameters import AnalyzeParameters

DEMO_SIZE = (96, 96, 48)


def _wait(logic, timeout_s=600):
    deadline = time.monotonic() + timeout_s
    while logic.running and time.monotonic() < deadline:
        logic.poll()
        slicer.app.processEvents()
        time.sleep(0.1)
    logic.poll()


class CovidCTAnalyzeLogicTest(unittest.TestCase):
    def setUp(self):
        missing = missing_packages(need_torch=True)  # a build machine's Slicer has none of them
        if missing:
            self.skipTest("Python packages not installed: " + ", ".join(missing))
        slicer.mrmlScene.Clear()

    def test_demo_results_in_scene_and_input_untouched(self):
        logic = AnalyzeLogic(slicer.mrmlScene, demo_size=DEMO_SIZE)
        parameters = AnalyzeParameters.of(slicer.mrmlScene)
        logic.start_demo(parameters)
        _wait(logic)
        self.assertEqual(logic.state.value, "succeeded", logic.error_message)
        ct = logic.results.volume
        lungs = logic.results.lungs
        self.assertEqual(lungs.GetSegmentation().GetNumberOfSegments(), 2)

        # analyze the loaded demo CT again, as a user would: the node must not change
        parameters.inputVolume = ct
        mtime = ct.GetMTime(), ct.GetImageData().GetMTime()
        logic.start(parameters)
        _wait(logic)
        self.assertEqual(logic.state.value, "succeeded", logic.error_message)
        self.assertEqual((ct.GetMTime(), ct.GetImageData().GetMTime()), mtime)

    def test_cancel_stops_the_run(self):
        logic = AnalyzeLogic(slicer.mrmlScene, demo_size=DEMO_SIZE)
        logic.start_demo(AnalyzeParameters.of(slicer.mrmlScene))
        time.sleep(1.0)
        logic.cancel()
        logic.poll()
        self.assertEqual(logic.state.value, "cancelled")
        self.assertIsNone(logic.results)


def runTests():
    suite = unittest.TestLoader().loadTestsFromTestCase(CovidCTAnalyzeLogicTest)
    return unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
