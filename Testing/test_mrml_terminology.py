"""The segment terminology as 3D Slicer's application uses it: registered in a Terminologies logic, every segment we
create names a context and a type that logic knows, and the modules register it when Slicer has started."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("slicer")

import slicer  # noqa: E402
import vtk  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct  # noqa: E402
from CovidCTAnalysis.io import write_label_map  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS, LOBE_REGION_SEGMENTS, LUNG_SEGMENTS  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import load_segmentation  # noqa: E402
from CovidCTAnalysis.mrml.terminology import load_terminology  # noqa: E402

pytestmark = pytest.mark.mrml

REPO = Path(__file__).resolve().parents[1]


def _loaded(logic) -> list[str]:
    names = vtk.vtkStringArray()
    logic.GetLoadedTerminologyNames(names)
    return [names.GetValue(i) for i in range(names.GetNumberOfValues())]


def test_registering_twice_loads_the_context_once():
    logic = slicer.vtkSlicerTerminologiesModuleLogic()  # as the application has it before our module starts
    assert load_terminology(logic) == load_terminology(logic)
    assert _loaded(logic).count("Segmentation category and type - CovidCTAnalysis") == 1


@pytest.mark.parametrize("segments, name", [(LUNG_SEGMENTS, "lungs"), (LESION_SEGMENTS, "lesions"),
                                            (LOBE_REGION_SEGMENTS, "lobes")])
def test_every_segment_points_at_a_registered_type(segments, name, tmp_path):
    case = make_demo_ct(size=(64, 64, 24), seed=1)
    path = write_label_map(case.lesions if name == "lesions" else case.lungs, tmp_path / f"{name}.seg.nrrd", segments)
    with new_scene() as headless:
        logic = headless.terminologies_logic
        node = load_segmentation(headless.scene, path, segments, name=name)
        segmentation = node.GetSegmentation()
        assert segmentation.GetNumberOfSegments() >= 1
        for index in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetNthSegment(index)
            entry = slicer.vtkSlicerTerminologyEntry()
            assert logic.DeserializeTerminologyEntry(segment.GetTerminology(), entry)
            context = entry.GetTerminologyContextName()
            assert context in _loaded(logic)
            known = slicer.vtkSlicerTerminologyEntry()
            assert logic.FindTypeInTerminologyBy3dSlicerLabel(context, segment.GetName(), known), segment.GetName()
            assert known.GetTypeObject().GetCodeValue() == entry.GetTypeObject().GetCodeValue()
            assert known.GetCategoryObject().GetCodeValue() == entry.GetCategoryObject().GetCodeValue()


def test_the_analyze_module_registers_the_terminology_when_slicer_has_started():
    base = REPO / "CovidCTAnalysis" / "SlicerModules" / "CovidCTAnalyze" / "CovidCTAnalyzeLib" / "ModuleWidget.py"
    tree = ast.parse(base.read_text(encoding="utf-8"))
    connects = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) ==
                "slicer.app.connect"]
    assert connects == ["slicer.app.connect('startupCompleted()', registerTerminology)"]
    register = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "registerTerminology")
    assert "load_terminology(slicer.modules.terminologies.logic())" in ast.unparse(register)
