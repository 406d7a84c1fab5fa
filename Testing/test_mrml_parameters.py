"""Typed module state in a real parameter node (CovidCTAnalysis.mrml.parameters) on a slicer-core scene."""

from __future__ import annotations

import pytest

pytest.importorskip("slicer")

from CovidCTAnalysis.mrml.parameters import (  # noqa: E402
    Bool,
    Choice,
    Float,
    NodeReference,
    ParameterNode,
    String,
    StringList,
)
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402

pytestmark = pytest.mark.mrml


class Example(ParameterNode):
    module_name = "CovidCTTestModule"
    volume = NodeReference("vtkMRMLScalarVolumeNode")
    device = Choice("auto", ("auto", "cpu", "cuda"))
    threshold = Float(0.5, minimum=0.0, maximum=1.0)
    show = Bool(True)
    folder = String("")
    models = StringList(())


@pytest.fixture
def headless():
    with new_scene() as fresh:
        yield fresh


def test_defaults_then_typed_values_stored_as_text(headless):
    params = Example.of(headless.scene)
    assert (params.device, params.threshold, params.show, params.folder, params.models, params.volume) == \
        ("auto", 0.5, True, "", (), None)
    volume = headless.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    params.device, params.threshold, params.show, params.models, params.volume = "cuda", 0.25, False, ["a", "b"], volume
    node = params.node
    assert node.IsA("vtkMRMLScriptedModuleNode") and node.GetAttribute("ModuleName") == "CovidCTTestModule"
    assert [node.GetParameter(k) for k in ("device", "threshold", "show", "models")] == ["cuda", "0.25", "false", "a,b"]
    assert node.GetNodeReferenceID("volume") == volume.GetID()
    assert Example.of(headless.scene).node is node  # one parameter node per module and scene
    assert Example.of(headless.scene).values() == {"volume": volume.GetID(), "device": "cuda", "threshold": 0.25,
                                                   "show": False, "folder": "", "models": ("a", "b")}


def test_invalid_values_are_refused_and_leave_the_node_unchanged(headless):
    params = Example.of(headless.scene)
    params.threshold = 0.75
    with pytest.raises(ValueError):
        params.threshold = 1.5
    with pytest.raises(ValueError):
        params.device = "tpu"
    with pytest.raises(TypeError):
        params.volume = headless.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    assert params.threshold == 0.75 and params.device == "auto" and params.volume is None


def test_observer_sees_changes(headless):
    params = Example.of(headless.scene)
    seen = []
    tag = params.add_observer(lambda p: seen.append(p.threshold))
    params.threshold = 0.3
    params.remove_observer(tag)
    params.threshold = 0.4
    assert seen == [0.3]


def test_state_survives_scene_save_and_reload(tmp_path, headless):
    first = headless
    params = Example.of(first.scene)
    volume = first.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    params.volume, params.device, params.threshold, params.models = volume, "cpu", 0.65, ["decovnet"]
    first.scene.SetURL(str(tmp_path / "scene.mrml"))
    assert first.scene.Commit()

    second = new_scene()
    second.scene.SetURL(str(tmp_path / "scene.mrml"))
    assert second.scene.Connect()
    reloaded = Example.of(second.scene)
    assert (reloaded.device, reloaded.threshold, reloaded.models) == ("cpu", 0.65, ("decovnet",))
    assert reloaded.volume is not None and reloaded.volume.GetName() == "CT"
    second.close()
