"""Stage timing and progress events."""

from CovidCTAnalysis.pipeline import Progress


def test_stage_events_and_timings():
    events = []
    progress = Progress(lambda *e: events.append(e))
    with progress.stage("lungs", "segmenting") as report:
        report(0.5, "half")
        report(7, "clamped")
    assert events[0] == ("lungs", 0.0, "segmenting")
    assert events[1] == ("lungs", 0.5, "half")
    assert events[2][1] == 1.0
    assert events[-1][:2] == ("lungs", 1.0)
    assert progress.timings_s["lungs"] >= 0


def test_failed_stage_has_no_timing():
    progress = Progress()
    try:
        with progress.stage("load", "reading"):
            raise ValueError("bad")
    except ValueError:
        pass
    assert "load" not in progress.timings_s
