"""Analyses requested from the browser (CovidCTAnalysis.web.jobs): one runs, the others wait in order; cancel."""

from __future__ import annotations

from CovidCTAnalysis.mrml.process import ProcessState
from CovidCTAnalysis.web.jobs import AnalysisQueue


class FakeParameters:
    inputVolume = None
    outputFolder = ""


class FakeLogic:
    """Stands in for AnalyzeLogic: records starts; a test ends the running analysis with ``finish``."""

    def __init__(self):
        self.started, self.running, self.state, self.error_message = [], False, ProcessState.NOT_STARTED, ""

    def start_file(self, parameters, path):
        self.started.append((str(path), parameters.inputVolume, parameters.outputFolder))
        self.running, self.state = True, ProcessState.RUNNING

    def poll(self):
        return []

    def cancel(self):
        self.running, self.state = False, ProcessState.CANCELLED

    def finish(self, state=ProcessState.SUCCEEDED, error=""):
        self.running, self.state, self.error_message = False, state, error


def test_requests_while_one_runs_are_queued_in_order_and_start_one_after_another(tmp_path):
    logic = FakeLogic()
    queue = AnalysisQueue(logic, FakeParameters(), tmp_path)
    first, second, third = (queue.submit(f"ct{i}.nrrd", f"node{i}", f"CT {i}") for i in range(3))
    assert [queue.position(r) for r in (first, second, third)] == [0, 1, 2]
    assert logic.started == [("ct0.nrrd", "node0", str(tmp_path / "runs" / "0001"))]
    queue.poll()
    assert len(logic.started) == 1  # still running: nothing else starts
    logic.finish()
    queue.poll()
    assert first.state is ProcessState.SUCCEEDED and queue.finished is first
    assert queue.current is second and logic.started[-1] == ("ct1.nrrd", "node1", str(tmp_path / "runs" / "0002"))
    queue.cancel(third)  # a waiting request is dropped
    assert third.state is ProcessState.CANCELLED and not queue.waiting
    queue.cancel()  # the running one is stopped
    assert second.state is ProcessState.CANCELLED and not queue.running


def test_a_failure_is_kept_with_its_message_and_numbers_continue_after_earlier_runs(tmp_path):
    (tmp_path / "runs" / "0007").mkdir(parents=True)
    logic = FakeLogic()
    queue = AnalysisQueue(logic, FakeParameters(), tmp_path)
    request = queue.submit("ct.nrrd", "node", "CT")
    assert request.number == 8
    logic.finish(ProcessState.FAILED, "ct.nrrd: not a chest CT")
    queue.poll()
    assert request.state is ProcessState.FAILED and request.error == "ct.nrrd: not a chest CT"


def test_nothing_to_analyze_is_refused(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="open a CT first"):
        AnalysisQueue(FakeLogic(), FakeParameters(), tmp_path).submit(None, None, "")
