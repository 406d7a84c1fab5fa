"""A classifier's attention per slice as a table and a bar chart in the scene (the Plots view of 3D Slicer).

Multiple-instance classifiers weigh every slice of a CT (DA-CMIL, seed 004 §5.4 and Fig. 8: "attention scores"
beside the spatial maps); report.json gives them as ``slice_attention`` {canonical z: weight}. Here they become a
locked table node (slice number counted from the feet, 1 = lowest slice: report.json's index + 1; and the weight)
and a plot chart node with one bar series over it, which Slicer shows in a plot view."""

from __future__ import annotations

import vtk

SLICE, WEIGHT = "slice", "attention"


def attention_rows(slice_attention: dict) -> list[tuple[int, float]]:
    """(slice number from the feet, 1 = lowest, weight) sorted by slice, from report.json's {z (str or int): weight}."""
    return sorted((int(z) + 1, float(w)) for z, w in slice_attention.items())


def attention_plot(scene, model: str, slice_attention: dict, name: str | None = None) -> tuple[object, object]:
    """(table node, plot chart node) of ``model``'s attention per slice."""
    name = name or f"{model} attention per slice"
    table = vtk.vtkTable()
    slices, weights = vtk.vtkDoubleArray(), vtk.vtkDoubleArray()
    slices.SetName(SLICE)
    weights.SetName(WEIGHT)
    table.AddColumn(slices)
    table.AddColumn(weights)
    rows = attention_rows(slice_attention)
    table.SetNumberOfRows(len(rows))
    for i, (number, weight) in enumerate(rows):
        slices.SetValue(i, number)
        weights.SetValue(i, weight)
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    table_node.SetAndObserveTable(table)
    table_node.SetLocked(True)
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(f"{model} attention"))
    series.SetAndObserveTableNodeID(table_node.GetID())
    series.SetXColumnName(SLICE)
    series.SetYColumnName(WEIGHT)
    series.SetPlotType(series.PlotTypeBar)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(name))
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle(name)
    chart.SetXAxisTitle("axial slice (1 = lowest)")
    chart.SetYAxisTitle("attention weight")
    chart.SetLegendVisibility(False)
    return table_node, chart


def chart_series(chart) -> list[object]:
    """The plot series nodes of a chart (for removal and tests)."""
    scene = chart.GetScene()
    return [scene.GetNodeByID(chart.GetNthPlotSeriesNodeID(i)) for i in range(chart.GetNumberOfPlotSeriesNodes())]
