"""Attention per slice of a multiple-instance classifier: a bar chart in report.html and a table with a bar chart in
the MRML scene."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from CovidCTAnalysis.pipeline.report_images import attention_charts

REPORT = {"da-cmil": {"probability": 0.8, "label": "COVID-19", "slice_attention": {"3": 0.1, "8": 0.6, "13": 0.3},
                      "top_slices": [8, 13, 3]},
          "decovnet": {"probability": 0.4, "label": "non-COVID"}}


def test_report_gets_one_attention_chart_per_classifier_that_has_one():
    charts = attention_charts(REPORT)
    assert len(charts) == 1 and charts[0][0].startswith("da-cmil attention")
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(charts[0][1]))).convert("RGB")).astype(int)
    red = (image[..., 0] > 150) & (image[..., 1] < 100) & (image[..., 2] < 100)
    assert red.sum() > 200  # the bars are drawn
    assert attention_charts({"decovnet": REPORT["decovnet"]}) == []


def test_classifier_line_names_the_most_attended_slices():
    from CovidCTAnalysis.pipeline.report import _classifier_line

    assert "most attended axial slices 9, 14, 4" in _classifier_line(REPORT["da-cmil"])


@pytest.mark.mrml
def test_attention_table_and_bar_chart_in_the_scene():
    pytest.importorskip("slicer")
    from CovidCTAnalysis.mrml.plots import SLICE, WEIGHT, attention_plot, attention_rows, chart_series
    from CovidCTAnalysis.mrml.scene import new_scene

    headless = new_scene()
    scene = headless.scene
    table, chart = attention_plot(scene, "da-cmil", REPORT["da-cmil"]["slice_attention"])
    assert attention_rows(REPORT["da-cmil"]["slice_attention"]) == [(4, 0.1), (9, 0.6), (14, 0.3)]
    t = table.GetTable()
    assert t.GetNumberOfRows() == 3
    assert [t.GetColumnByName(SLICE).GetValue(i) for i in range(3)] == [4, 9, 14]
    assert [t.GetColumnByName(WEIGHT).GetValue(i) for i in range(3)] == pytest.approx([0.1, 0.6, 0.3])
    (series,) = chart_series(chart)
    assert series.GetPlotType() == series.PlotTypeBar and series.GetTableNodeID() == table.GetID()
    assert chart.GetTitle() == "da-cmil attention per slice"
    headless.close()
