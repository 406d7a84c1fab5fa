"""What the four COVID-19 CT modules share in 3D Slicer: metadata, the widget's life cycle, the self-test helpers.

Each module file keeps only what differs (its title and help, which widget shows which parameter, what its run
button starts and how it shows the outcome). Shared here:

- ``CovidCTModule``: category, contributors, acknowledgement and the research-use notice of every module; the
  Analyze module also registers the segment terminology (Resources/Terminology) when Slicer has started;
- ``CovidCTModuleWidget``: the life cycle of a panel.

  1. ``setup()`` loads ``Resources/UI/<Module>.ui``, creates the module's Qt-free logic (``createLogic``), lets the
     subclass fill and connect its own widgets (``setupWidgets``), connects the widgets named in ``bindings`` and
     observes the scene's close events;
  2. the scene's parameter node (``parametersClass``) holds the state: ``updateGuiFromParameters`` and
     ``onGuiChanged`` copy it to and from the widgets of ``bindings`` (plus the ``updateGui`` / ``updateParameters``
     hooks), each guarded so that one never triggers the other;
  3. ``runJob(start)`` checks the Python packages (Dependencies.py), starts a background run, turns the run button
     into Cancel and polls the run from a timer; ``onJobFinished`` reports success, failure (one message) or
     cancellation and calls ``showOutcome``;
  4. closing the scene cancels the run and forgets the results (``forgetResults``).

- ``CovidCTModuleTest``: self-tests that skip, with a message, when the Python packages they need are absent (a
  build machine's Slicer has no PyTorch and none of the packages installed at first use), load the demo CT and wait
  for a background run while Slicer keeps processing events.

This file imports Qt and Slicer: it runs only inside 3D Slicer (the logic classes next to it do not).
"""

import sys
import time
from pathlib import Path

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

try:
    import CovidCTAnalysis  # noqa: F401 - installed extension: the package lies next to the module scripts
except ImportError:  # a source checkout added through "Additional module paths": the package is 4 folders up
    sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from .Dependencies import ensure_dependencies, missing_packages

CATEGORY = "Chest Imaging Platform.COVID-19 CT"
POLL_INTERVAL_MS = 200
DEVICES = ("auto", "cpu", "cuda")


class CovidCTModule(ScriptedLoadableModule):
    """Module metadata: subclasses set ``title``; the help text is the first paragraph of the module file's docstring.

    Every module but Analyze depends on CovidCTAnalyze, whose Lib holds this shared code.
    """

    title = ""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        parent.title = self.title
        parent.categories = [CATEGORY]
        parent.dependencies = [] if self.moduleName == "CovidCTAnalyze" else ["CovidCTAnalyze"]
        parent.contributors = ["CovidCTAnalysis developers"]
        summary = (sys.modules[type(self).__module__].__doc__ or "").split("\n\n")[0]
        parent.helpText = " ".join(summary.split()) + " Research use only; not for diagnosis. See docs/SLICER.md."
        parent.acknowledgementText = "CovidCTAnalysis: an open-source COVID-19 chest-CT toolkit for research."
        if self.moduleName == "CovidCTAnalyze":
            # segments refer to our terminology context: Slicer must know it before any scene is loaded
            slicer.app.connect("startupCompleted()", registerTerminology)


def registerTerminology():
    """Load Resources/Terminology into Slicer's Terminologies module (once; also called when a panel opens)."""
    from CovidCTAnalysis.mrml.terminology import load_terminology

    try:
        load_terminology(slicer.modules.terminologies.logic())
    except (AttributeError, RuntimeError) as exc:  # no Terminologies module, or an unreadable file: segments still work
        print(f"CovidCTAnalysis: the segment terminology was not registered: {exc}", file=sys.stderr)


# -- parameter <-> widget bindings: (read the widget, write the widget, the signal of a user's change) ----------------
def _set_text(widget, text):
    if widget.text != text:  # rewriting the text would move the cursor while the user types
        widget.text = text


BINDINGS = {
    "node": (lambda w: w.currentNode(), lambda w, v: w.setCurrentNode(v), "currentNodeChanged"),
    "device": (lambda w: DEVICES[max(w.currentIndex, 0)], lambda w, v: setattr(w, "currentIndex", DEVICES.index(v)),
               "currentIndexChanged"),
    "checked": (lambda w: w.checked, lambda w, v: setattr(w, "checked", v), "toggled"),
    "path": (lambda w: w.currentPath, lambda w, v: setattr(w, "currentPath", v), "currentPathChanged"),
    "text": (lambda w: w.text.strip(), _set_text, "textChanged"),
    "itemText": (lambda w: w.currentText, lambda w, v: setattr(w, "currentIndex", max(w.findText(v), 0)),
                 "currentIndexChanged"),
    "itemData": (lambda w: w.currentData, lambda w, v: setattr(w, "currentIndex", max(w.findData(v), 0)),
                 "currentIndexChanged"),
    "value": (lambda w: w.value, lambda w, v: setattr(w, "value", v), "valueChanged"),
}


class CovidCTModuleWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """A module panel over a Qt-free logic and a parameter node (see the module docstring for the life cycle).

    Subclasses set ``parametersClass``, ``runButtonName`` / ``runButtonText``, ``bindings`` (parameter name, widget
    name, kind of ``BINDINGS``) and implement ``createLogic`` and ``onRunClicked``; the other methods are hooks.
    """

    parametersClass = None
    runButtonName = "runButton"
    runButtonText = "Run"
    bindings = (("inputVolume", "inputVolumeSelector", "node"), ("device", "deviceComboBox", "device"))

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.job = None  # the logic object whose background run the timer follows
        self.busy = False
        self.parameters = None
        self._updating = False
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)

    # -- hooks ------------------------------------------------------------------------------------------------------
    def createLogic(self):
        raise NotImplementedError

    def setupWidgets(self):
        """Fill and connect the module's own widgets (those not in ``bindings``)."""

    def initializeParameters(self, parameters):
        """Defaults that depend on the scene or on what this version ships."""

    def updateGui(self, parameters):
        """Show parameters that no binding covers."""

    def updateParameters(self, parameters):
        """Store GUI state that no binding covers."""

    def parametersEdited(self):
        """The user changed a bound widget (after the parameters were stored)."""

    def canRun(self) -> bool:
        return self.parameters.inputVolume is not None

    def updateOtherButtons(self, running: bool):
        """Enable the module's other buttons."""

    def showOutcome(self):
        """Show the result of a run that succeeded."""

    def forgetResults(self):
        """The scene is closing: its nodes go, so drop every reference to them."""

    def failureTitle(self) -> str:
        return self.parent.title if self.parent is not None else self.moduleName

    # -- set-up -----------------------------------------------------------------------------------------------------
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.moduleName}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        registerTerminology()
        self.logic = self.createLogic()
        self.setupWidgets()
        for _, widgetName, kind in self.bindings:
            getattr(getattr(self.ui, widgetName), BINDINGS[kind][2]).connect(self.onGuiChanged)
        getattr(self.ui, self.runButtonName).clicked.connect(self.onRunClicked)
        self.timer.timeout.connect(self.onTimer)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self):
        self.timer.stop()
        if self.job is not None:
            self.job.cancel()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def onSceneStartClose(self, caller, event):
        self.timer.stop()
        if self.job is not None:
            self.job.cancel()
        self.forgetResults()

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        if self.parameters is not None:
            self.removeObserver(self.parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameters)
        self.parameters = self.parametersClass.of(slicer.mrmlScene)
        if self.parameters.inputVolume is None:
            self.parameters.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        self.initializeParameters(self.parameters)
        self.addObserver(self.parameters.node, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameters)
        self.updateGuiFromParameters()

    # -- parameters <-> GUI -----------------------------------------------------------------------------------------
    def updateGuiFromParameters(self, caller=None, event=None):
        if self.parameters is None or self._updating:
            return
        self._updating = True
        try:
            for parameter, widgetName, kind in self.bindings:
                BINDINGS[kind][1](getattr(self.ui, widgetName), getattr(self.parameters, parameter))
            self.updateGui(self.parameters)
            self.updateButtons()
        finally:
            self._updating = False

    def onGuiChanged(self, *args):
        if self.parameters is None or self._updating:
            return
        self._updating = True
        try:
            for parameter, widgetName, kind in self.bindings:
                setattr(self.parameters, parameter, BINDINGS[kind][0](getattr(self.ui, widgetName)))
            self.updateParameters(self.parameters)
        finally:
            self._updating = False
        self.updateButtons()
        self.parametersEdited()

    def updateButtons(self):
        running = self.job is not None and self.job.running
        button = getattr(self.ui, self.runButtonName)
        button.text = "Cancel" if running else self.runButtonText
        button.enabled = running or self.canRun()
        self.ui.inputsCollapsibleButton.enabled = not running
        self.updateOtherButtons(running)

    # -- running ----------------------------------------------------------------------------------------------------
    def cancelIfRunning(self) -> bool:
        """Cancel the current run (the run button is Cancel while it runs); True when there was one."""
        if self.job is None or not self.job.running:
            return False
        self.job.cancel()
        self.onTimer()
        return True

    def runJob(self, logic, start, needTorch: bool, status: str, busy: bool = False) -> bool:
        """Install what is missing, then ``start()``, which starts a background run of ``logic``, and follow it.

        ``busy``: the process reports no stages, so the progress bar shows activity instead of a percentage.
        """
        if not ensure_dependencies(need_torch=needTorch):
            return False
        try:
            start()
            self.job = logic
        except Exception as exc:  # noqa: BLE001 - bad input or settings: one message for the user
            slicer.util.errorDisplay(str(exc))
            return False
        self.busy = busy
        if busy:
            self.ui.progressBar.setRange(0, 0)
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = status
        self.timer.start()
        self.updateButtons()
        return True

    def onTimer(self):
        job = self.job
        job.poll()
        if not self.busy:
            self.ui.progressBar.value = int(round(100 * job.progress))
        if job.stage_title:
            self.ui.statusLabel.text = f"{job.stage_title}: {job.stage_message}"
        if not job.running:
            self.timer.stop()
            self.onJobFinished(job.state.value)

    def onJobFinished(self, state: str):
        self.ui.progressBar.setRange(0, 100)
        self.ui.progressBar.value = 100 if state == "succeeded" else 0
        if state == "succeeded":
            self.ui.statusLabel.text = "Done."
            self.showOutcome()
        elif state == "failed":
            self.ui.statusLabel.text = "Failed: " + self.job.error_message
            slicer.util.errorDisplay(f"{self.failureTitle()} failed: {self.job.error_message}")
        else:
            self.ui.statusLabel.text = "Cancelled."
        self.updateButtons()


class CovidCTModuleTest(ScriptedLoadableModuleTest):
    """Self-test base: ``runTest`` clears the scene and runs ``tests`` unless a Python package they need is missing."""

    #: the tests run a model on PyTorch
    needsTorch = False
    tests = ()

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        missing = missing_packages(need_torch=self.needsTorch)
        if missing:
            self.delayDisplay("Skipped: these Python packages are not installed: " + ", ".join(missing)
                              + ". Run the module once to install them, then test again.")
            return
        for name in self.tests:
            self.setUp()
            getattr(self, name)()
        self.delayDisplay("Test passed")

    def loadDemoCT(self, size=(96, 96, 48), seed=0):
        """(volume node, demo case, folder) of a generated demo chest CT written to a temporary folder."""
        import tempfile

        from CovidCTAnalysis.demo import make_demo_ct, write_demo_case

        folder = Path(tempfile.mkdtemp())
        case = make_demo_ct(size=size, seed=seed)
        return slicer.util.loadVolume(str(write_demo_case(case, folder))), case, folder

    def waitFor(self, logic, timeout_s: float = 600):
        """Poll a background run until it ends, keeping the GUI live; assert it succeeded."""
        deadline = time.monotonic() + timeout_s
        while logic.running and time.monotonic() < deadline:
            logic.poll()
            slicer.app.processEvents()
            time.sleep(0.1)
        self.assertEqual(logic.state.value, "succeeded", logic.error_message)
