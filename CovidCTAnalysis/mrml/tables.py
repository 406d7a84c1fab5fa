"""The report's numbers as a table node (one row per measurement: name, value, unit, note)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import vtk

COLUMNS = ("Measurement", "Value", "Unit", "Note")


@dataclass(frozen=True)
class Row:
    measurement: str
    value: float
    unit: str
    note: str = ""


def report_rows(report: dict, notes=()) -> list[Row]:
    """The rows of report.json (docs/CONTRACTS.md 'report.json'), in reading order; stages this version lacks say so.
    The report's warnings (a slice without a lung mask, issue 18) come first, one row each, then the loader's
    ``notes`` (what it left out of the scene and why), one "Note" row each."""
    rows: list[Row] = [Row("Warning", math.nan, "", text) for text in report.get("warnings") or ()]
    rows += [Row("Note", math.nan, "", text) for text in notes]
    lungs = report.get("lungs")
    if lungs:
        rows += [Row("Right lung volume", lungs["right_ml"], "mL"), Row("Left lung volume", lungs["left_ml"], "mL"),
                 Row("Lung volume", lungs["total_ml"], "mL")]
    lesions = report.get("lesions")
    if lesions:
        rows += [Row("Ground-glass opacity volume", lesions["ggo_ml"], "mL"),
                 Row("Consolidation volume", lesions["consolidation_ml"], "mL"),
                 Row("Lesion volume", lesions["total_ml"], "mL")]
        involvement = lesions.get("percent_involvement")
        if involvement is None and "percent_involvement" in lesions:  # an image without a lung mask (issue 18)
            rows.append(Row("Involvement", math.nan, "", "not measured: no lung mask"))
        for side, title in (("right", "right lung"), ("left", "left lung"), ("total", "both lungs")):
            if side in (involvement or {}):
                rows.append(Row(f"Involvement of {title}", involvement[side], "%"))
        severity = lesions.get("severity")
        if severity:
            rows.append(Row("Severity band", math.nan, "", " ".join(filter(None, (severity.get("band"),
                                                                                  severity.get("description"))))))
    for model, result in (report.get("classifiers") or {}).items():
        raw = result.get("probability_raw")
        note = str(result.get("label", "")) + (f" (calibrated; uncalibrated {raw:.3f})" if raw is not None else "")
        rows.append(Row(f"P(COVID-19), {model}", result["probability"], "", note))
        if result.get("validation"):  # how far its weights were validated (registry, from the model card)
            rows.append(Row(f"Validation, {model}", math.nan, "", result["validation"]))
        if "corona_score_cm3" in result:
            rows.append(Row(f"Corona score, {model}", result["corona_score_cm3"], "cm3"))
    consensus = report.get("consensus") or {}
    if consensus.get("probability") is not None:
        flag = (f"the classifiers disagree (spread {consensus['spread']:.2f} > {consensus['threshold']:.2f})"
                if consensus.get("disagreement") else "")
        rows.append(Row(f"P(COVID-19), consensus of {len(consensus['models'])}", consensus["probability"], "", flag))
        if consensus.get("validation"):
            rows.append(Row("Validation, consensus", math.nan, "", consensus["validation"]))
    for stage, why in (report.get("unavailable") or {}).items():
        rows.append(Row(f"{stage.capitalize()}", math.nan, "", why))
    return rows


def report_table(scene, report: dict, name: str = "CovidCT measurements", notes=()):
    """A new vtkMRMLTableNode with the report's rows (value column numeric: NaN where there is no number) and the
    loader's ``notes``."""
    rows = report_rows(report, notes)
    table = vtk.vtkTable()
    measurement, unit, note = vtk.vtkStringArray(), vtk.vtkStringArray(), vtk.vtkStringArray()
    value = vtk.vtkDoubleArray()
    for array, title in zip((measurement, value, unit, note), COLUMNS):
        array.SetName(title)
        table.AddColumn(array)
    table.SetNumberOfRows(len(rows))
    for index, row in enumerate(rows):
        measurement.SetValue(index, row.measurement)
        value.SetValue(index, float(row.value))
        unit.SetValue(index, row.unit)
        note.SetValue(index, row.note)
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    node.SetAndObserveTable(table)
    if hasattr(node, "SetUseColumnTitleAsColumnHeader"):
        node.SetUseColumnTitleAsColumnHeader(True)
    else:  # Slicer < 5.4
        node.SetUseColumnNameAsColumnHeader(True)
    node.SetColumnDescription("Value", "measured value (NaN: not available)")
    node.SetLocked(True)
    return node


def table_rows(node) -> list[Row]:
    """Read the rows back from a table node (for tests and for front ends that show them)."""
    table = node.GetTable()
    columns = [table.GetColumnByName(c) for c in COLUMNS]
    return [Row(columns[0].GetValue(i), float(columns[1].GetValue(i)), columns[2].GetValue(i),
                columns[3].GetValue(i)) for i in range(table.GetNumberOfRows())]
