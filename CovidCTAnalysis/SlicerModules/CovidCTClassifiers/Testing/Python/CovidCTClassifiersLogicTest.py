"""Classifier logics inside 3D Slicer: every classifier name listed; each shipped classifier runs on the demo CT.

Run by ctest (Testing/Python/CMakeLists.txt) or from Slicer's Python console:
``import CovidCTClassifiersLogicTest; CovidCTClassifiersLogicTest.runTests()``.
"""

import tempfile
import time
import unittest
from pathlib import Path

import slicer
from CovidCTAnalyzeLib.Dependencies import missing_packages
from CovidCTClassifiersLib.ClassifierLogic import ClassifierLogic, classifier_choices
from CovidCTClassifiersLib.Parameters import ClassifierParameters


class CovidCTClassifiersLogicTest(unittest.TestCase):
    def setUp(self):
        missing = missing_packages(need_torch=True)  # a build machine's Slicer has none of them
        if missing:
            self.skipTest("Python packages not installed: " + ", ".join(missing))
        slicer.mrmlScene.Clear()

    def test_every_classifier_listed(self):
        self.assertEqual(len(classifier_choices()), 5)

    def test_available_classifiers_run_on_demo(self):
        from CovidCTAnalysis.demo import make_demo_ct, write_demo_case

        shipped = [name for name, info in classifier_choices() if info is not None]
        if not shipped:
            self.skipTest("no classifier is registered in this version")
        case = make_demo_ct(size=(96, 96, 48), seed=0)
        volume = slicer.util.loadVolume(str(write_demo_case(case, Path(tempfile.mkdtemp()))))
        parameters = ClassifierParameters.of(slicer.mrmlScene)
        parameters.inputVolume = volume
        for name in shipped:
            logic = ClassifierLogic(slicer.mrmlScene, name)
            logic.start(parameters)
            deadline = time.monotonic() + 600
            while logic.running and time.monotonic() < deadline:
                logic.poll()
                slicer.app.processEvents()
                time.sleep(0.1)
            self.assertEqual(logic.state.value, "succeeded", logic.error_message)
            self.assertTrue(0.0 <= logic.result["probability"] <= 1.0)


def runTests():
    suite = unittest.TestLoader().loadTestsFromTestCase(CovidCTClassifiersLogicTest)
    return unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
