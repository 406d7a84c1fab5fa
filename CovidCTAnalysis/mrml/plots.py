"""A classifier's attention per slice as a table and a bar chart in the scene (the Plots view of 3D Slicer).

Multiple-instance classifiers weigh every slice of a CT (DA-CMIL, seed 004 §5.4 and Fig. 8: "attention scores"
beside the spatial maps); report.json gives them as ``slice_attention`` {canonical z: weight}, z counted from 0 at the
lowest slice. Here they become a locked table node and a plot chart node with one bar series over it, which Slicer
shows in a plot view.

A radiologist finds a slice by its position, so each slice is given as report.html names it: its z in mm (patient
coordinates, larger z = nearer the head: the offset Slicer's axial view shows), and its DICOM instance number and
file where the input has them. These are the ``positions`` {canonical z: {"z_mm", "dicom_instance", "file"}} that
``pipeline.report_images.SliceNames.position`` gives (report.json's ``slice_positions``, or ``results`` computes them
from the CT); the bars stand at z. Without the slices' z (an 8-bit picture, the CT gone) the slices are numbered from
the feet instead (1 = lowest slice: report.json's index + 1), as report.html then does."""

from __future__ import annotations

import vtk

Z_MM = "z (mm)"  # the slice's position along the feet-to-head axis, as Slicer's axial slice offset shows it
SLICE = "slice from the feet (1 = lowest)"  # instead of z, where the slices' positions are unknown
WEIGHT = "attention"
INSTANCE = "DICOM instance"  # where the input is a DICOM series
FILE = "file"  # the DICOM or image file that holds the slice, where the input has one per slice


def attention_rows(slice_attention: dict) -> list[tuple[int, float]]:
    """(slice number from the feet, 1 = lowest, weight) sorted by slice, from report.json's {z (str or int): weight}."""
    return sorted((int(z) + 1, float(w)) for z, w in slice_attention.items())


def _column(name: str, kind=vtk.vtkDoubleArray):
    array = kind()
    array.SetName(name)
    return array


def attention_plot(scene, model: str, slice_attention: dict, name: str | None = None,
                   positions: dict | None = None) -> tuple[object, object]:
    """(table node, plot chart node) of ``model``'s attention per slice. ``positions``: {canonical z (int): {"z_mm",
    "dicom_instance", "file"}} of the slices (``results.attended_slice_positions``); without a z for every slice,
    the slices are counted from the feet."""
    name = name or f"{model} attention per slice"
    rows = [(number, weight, (positions or {}).get(number - 1) or {})
            for number, weight in attention_rows(slice_attention)]
    located = bool(rows) and all(where.get("z_mm") is not None for _, _, where in rows)
    table = vtk.vtkTable()
    position, weights = _column(Z_MM if located else SLICE), _column(WEIGHT)
    columns = [position, weights]
    extra = [(key, _column(title, vtk.vtkStringArray)) for key, title in (("dicom_instance", INSTANCE), ("file", FILE))
             if any(where.get(key) is not None for _, _, where in rows)]
    for column in columns + [column for _, column in extra]:
        table.AddColumn(column)
    table.SetNumberOfRows(len(rows))
    for i, (number, weight, where) in enumerate(rows):
        position.SetValue(i, float(where["z_mm"]) if located else number)
        weights.SetValue(i, weight)
        for key, column in extra:
            column.SetValue(i, "" if where.get(key) is None else str(where[key]))
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    table_node.SetAndObserveTable(table)
    if located:
        table_node.SetColumnDescription(Z_MM, "axial slice position in the patient coordinates of the CT (mm, larger "
                                              "= nearer the head): the slice offset of Slicer's axial view")
    table_node.SetLocked(True)
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(f"{model} attention"))
    series.SetAndObserveTableNodeID(table_node.GetID())
    series.SetXColumnName(position.GetName())
    series.SetYColumnName(WEIGHT)
    series.SetPlotType(series.PlotTypeBar)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(name))
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle(name)
    chart.SetXAxisTitle("axial slice position z (mm)" if located else "axial slice (1 = lowest)")
    chart.SetYAxisTitle("attention weight")
    chart.SetLegendVisibility(False)
    return table_node, chart


def chart_series(chart) -> list[object]:
    """The plot series nodes of a chart (for removal and tests)."""
    scene = chart.GetScene()
    return [scene.GetNodeByID(chart.GetNthPlotSeriesNodeID(i)) for i in range(chart.GetNumberOfPlotSeriesNodes())]
